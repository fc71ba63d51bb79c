//! fluxstat's own resident memory and CPU time, from `/proc/self` (always the real
//! one: `--procfs` points at the machine being watched, not at fluxstat). Both
//! files stay open (see `files`); opened from any thread, `/proc/self` is the
//! whole process.

use super::files::{KeptFile, SMALL};

/// `/proc/self/statm` and `/proc/self/stat`, kept open.
#[derive(Debug)]
pub struct OwnFiles {
    statm: KeptFile,
    stat: KeptFile,
}

impl Default for OwnFiles {
    fn default() -> Self {
        OwnFiles {
            statm: KeptFile::new("/proc/self/statm".into(), SMALL),
            stat: KeptFile::new("/proc/self/stat".into(), SMALL),
        }
    }
}

impl OwnFiles {
    /// Resident set size in bytes, from `/proc/self/statm`.
    pub fn rss_bytes(&mut self) -> Option<u64> {
        let pages = parse_statm_resident(self.statm.read().ok()?)?;
        pages.checked_mul(rustix::param::page_size() as u64)
    }

    /// CPU time (user + system) in milliseconds, from `/proc/self/stat`.
    pub fn cpu_time_ms(&mut self) -> Option<u64> {
        let ticks = parse_stat_cpu_ticks(self.stat.read().ok()?)?;
        let hz = rustix::param::clock_ticks_per_second();
        (hz > 0).then(|| ticks.saturating_mul(1000) / hz)
    }
}

/// The second field of statm: resident pages.
pub fn parse_statm_resident(statm: &str) -> Option<u64> {
    statm.split_whitespace().nth(1)?.parse().ok()
}

/// utime + stime (fields 14 and 15 of proc(5)'s stat), read after the command
/// name, which may itself contain spaces and parentheses.
pub fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let (_, after) = stat.rsplit_once(')')?;
    let mut fields = after.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime.saturating_add(stime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        assert_eq!(parse_statm_resident("1234 567 89 1 0 100 0\n"), Some(567));
        assert_eq!(parse_statm_resident("1234"), None);
        let stat = "4242 (flux stat) S 1 4242 4242 0 -1 4194560 100 0 0 0 17 143 0 0 20 0 3 0 12345 5000000 600";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(160));
        let tricky = "7 (a) b) c) R 1 7 7 0 -1 0 0 0 0 0 5 6 0 0 20 0 1 0 1 1 1";
        assert_eq!(parse_stat_cpu_ticks(tricky), Some(11));
        assert_eq!(parse_stat_cpu_ticks("garbage"), None);
    }

    #[test]
    fn reads_this_process() {
        let mut own = OwnFiles::default();
        for _ in 0..2 {
            assert!(own.rss_bytes().is_some_and(|b| b > 0));
            assert!(own.cpu_time_ms().is_some());
        }
    }
}
