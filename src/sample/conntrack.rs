//! The connection-tracking table: `nf_conntrack_count` and `nf_conntrack_max`
//! under `<procfs>/sys/net/netfilter/`. A full table drops new connections, so a
//! router owner watches the percentage. `null` where the module is not loaded
//! (access-point-only images, most desktops without a firewall). Both files are
//! read every sample and kept open (`files::KeptFile`): two `pread`s.

use std::path::Path;

use super::files::{KeptFile, SMALL};
use crate::snapshot::Conntrack;

pub struct ConntrackFiles {
    count: KeptFile,
    max: KeptFile,
}

impl ConntrackFiles {
    pub fn new(procfs: &Path) -> ConntrackFiles {
        let dir = procfs.join("sys/net/netfilter");
        ConntrackFiles {
            count: KeptFile::new(dir.join("nf_conntrack_count"), SMALL),
            max: KeptFile::new(dir.join("nf_conntrack_max"), SMALL),
        }
    }

    /// `None` without the module (or with files that are not numbers).
    pub fn read(&mut self) -> Option<Conntrack> {
        let count = parse(self.count.read().ok()?)?;
        let max = parse(self.max.read().ok()?)?;
        Some(Conntrack { count, max })
    }
}

pub fn parse(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_percentage_table() {
        assert_eq!(parse("183\n"), Some(183));
        assert_eq!(parse("-1"), None);
        assert_eq!(parse(""), None);
        let table: &[(u64, u64, u64)] =
            &[(183, 15_360, 1), (15_360, 15_360, 100), (0, 65_536, 0), (7_680, 15_360, 50), (5, 0, 0)];
        for &(count, max, want) in table {
            assert_eq!(Conntrack { count, max }.used_percent(), want, "{count}/{max}");
        }
    }
}
