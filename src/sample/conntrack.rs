//! The connection-tracking table: `nf_conntrack_count` and `nf_conntrack_max`
//! under `<procfs>/sys/net/netfilter/`. A full table drops new connections, so a
//! router owner watches the percentage. `null` where the module is not loaded
//! (access-point-only images, most desktops without a firewall). Both files are
//! kept open (`files::KeptFile`); the count is read every sample, the maximum (a
//! sysctl an administrator rarely changes) every 60 s: each read of a sysctl file
//! costs the kernel a page allocation.

use std::path::Path;
use std::time::{Duration, Instant};

use super::files::{KeptFile, SMALL};
use crate::snapshot::Conntrack;

/// How often `nf_conntrack_max` is read again.
const MAX_REFRESH: Duration = Duration::from_secs(60);

pub struct ConntrackFiles {
    count: KeptFile,
    max: KeptFile,
    last_max: Option<(Instant, u64)>,
}

impl ConntrackFiles {
    pub fn new(procfs: &Path) -> ConntrackFiles {
        let dir = procfs.join("sys/net/netfilter");
        ConntrackFiles {
            count: KeptFile::new(dir.join("nf_conntrack_count"), SMALL),
            max: KeptFile::new(dir.join("nf_conntrack_max"), SMALL),
            last_max: None,
        }
    }

    /// `None` without the module (or with files that are not numbers).
    pub fn read(&mut self) -> Option<Conntrack> {
        let Some(count) = self.count.read().ok().and_then(parse) else {
            self.last_max = None; // module unloaded: ask again when it is back
            return None;
        };
        let max = match self.last_max {
            Some((at, max)) if at.elapsed() < MAX_REFRESH => max,
            _ => {
                let max = parse(self.max.read().ok()?)?;
                self.last_max = Some((Instant::now(), max));
                max
            }
        };
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
