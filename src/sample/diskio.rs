//! Block device I/O from `<procfs>/diskstats`: per whole disk, bytes read and
//! written, operations, and over the sample interval their rates and how busy
//! the device was (`io_ticks`: milliseconds with I/O in flight).
//!
//! Whole disks are the entries of `<sysfs>/block` (partitions live below them),
//! listed again only when the set of names in diskstats changes; where that
//! directory cannot be read, a name that extends another listed name by digits
//! (`sda1`, `mmcblk0p2`, `nvme0n1p1`) is taken for a partition. Partitions are not
//! reported: their I/O is their disk's, and the mounts family already names them.
//! `loop*`, `ram*` and `zram*` are left out by default (`--disk-io-exclude`).
//!
//! Rates follow the network rules (`network::delta`): none for the first sample
//! of a device, a 32-bit wrap allowed for (diskstats fields are `unsigned long`,
//! 32 bits on 32-bit kernels), a counter that went back otherwise is a reset and
//! gives no rate. Sectors are 512 bytes whatever the device's block size.
//! Keys are kernel names, unique (`names::make_unique`). diskstats is kept open
//! and read again from offset 0 each sample (`files::KeptFile`), at most 1 MiB.

use std::path::Path;
use std::time::Instant;

use super::files::KeptFile;
use super::network::delta;
use super::{fs, names};
use crate::glob::GlobList;
use crate::snapshot::BlockDevice;

/// Devices left out by default.
pub const DEFAULT_EXCLUDE: &str = "loop*,ram*,zram*";

/// One diskstats line's counters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stat {
    pub name: String,
    pub reads: u64,
    pub read_sectors: u64,
    pub writes: u64,
    pub written_sectors: u64,
    pub io_ticks_ms: u64,
}

/// The previous sample's counters and the whole-disk list.
#[derive(Debug, Default)]
pub struct DiskIo {
    previous: Vec<Stat>,
    at: Option<Instant>,
    /// The diskstats names the whole-disk list was made for, and that list.
    listed_for: Vec<String>,
    whole: Option<Vec<String>>,
    /// `<procfs>/diskstats`, kept open and read again from offset 0.
    file: Option<KeptFile>,
}

/// The most of diskstats read: some 10,000 devices.
const MAX_TABLE: usize = 1024 * 1024;

impl DiskIo {
    pub fn read(&mut self, procfs: &Path, sysfs: &Path, exclude: &GlobList, now: Instant) -> Option<Vec<BlockDevice>> {
        let file = self.file.get_or_insert_with(|| KeptFile::new(procfs.join("diskstats"), MAX_TABLE));
        let stats: Vec<Stat> = file.read().ok()?.lines().filter_map(|l| parse_line(l.as_bytes())).collect();
        let names: Vec<String> = stats.iter().map(|s| s.name.clone()).collect();
        if names != self.listed_for {
            self.whole = list_whole(&sysfs.join("block"));
            self.listed_for = names;
        }
        let whole = |s: &Stat| match &self.whole {
            Some(w) => w.contains(&s.name),
            None => !is_partition_name(&s.name, &self.listed_for),
        };
        let kept: Vec<Stat> = stats.iter().filter(|s| whole(s) && !exclude.matches(&s.name)).cloned().collect();
        Some(self.update(kept, now))
    }

    /// Names made unique and sorted, rates against the previous sample.
    pub fn update(&mut self, stats: Vec<Stat>, now: Instant) -> Vec<BlockDevice> {
        let mut unique: Vec<String> = stats.iter().map(|s| s.name.clone()).collect();
        names::make_unique(&mut unique);
        let mut stats: Vec<Stat> = stats.into_iter().zip(unique).map(|(s, name)| Stat { name, ..s }).collect();
        names::sort_by_key(&mut stats, |s| s.name.as_str());
        let secs = self.at.map(|t| now.saturating_duration_since(t).as_secs_f64()).filter(|s| *s > 0.0);
        let out = stats
            .iter()
            .map(|s| {
                let prev =
                    self.previous.binary_search_by(|p| p.name.as_str().cmp(&s.name)).ok().map(|i| &self.previous[i]);
                let d = |f: fn(&Stat) -> u64| delta(f(prev?), f(s));
                let per_sec = |n: u64| secs.map(|t| n as f64 / t);
                BlockDevice {
                    name: s.name.clone(),
                    read_bytes: s.read_sectors.saturating_mul(512),
                    written_bytes: s.written_sectors.saturating_mul(512),
                    reads: s.reads,
                    writes: s.writes,
                    // f64 of a u64 delta over positive seconds: finite; `as` saturates.
                    read_bytes_per_second: d(|s| s.read_sectors)
                        .and_then(|n| per_sec(n.saturating_mul(512)))
                        .map(|r| r.round() as u64),
                    written_bytes_per_second: d(|s| s.written_sectors)
                        .and_then(|n| per_sec(n.saturating_mul(512)))
                        .map(|r| r.round() as u64),
                    reads_per_second: d(|s| s.reads).and_then(per_sec).map(one_decimal),
                    writes_per_second: d(|s| s.writes).and_then(per_sec).map(one_decimal),
                    busy_percent: d(|s| s.io_ticks_ms)
                        .and_then(|ms| secs.map(|t| (ms as f64 / 10.0 / t).min(100.0)))
                        .map(one_decimal),
                }
            })
            .collect();
        self.previous = stats;
        self.at = Some(now);
        out
    }
}

fn one_decimal(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// The names under `<sysfs>/block`, sorted; `None` when it cannot be listed.
fn list_whole(dir: &Path) -> Option<Vec<String>> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).ok()?.flatten().map(|e| fs::decode(e.file_name().as_encoded_bytes())).collect();
    v.sort_unstable();
    Some(v)
}

/// Without sysfs: `sda1` (another name plus digits) and `mmcblk0p2`,
/// `nvme0n1p1` (another name plus `p` and digits) are partitions.
pub fn is_partition_name(name: &str, all: &[String]) -> bool {
    all.iter().any(|disk| {
        let Some(rest) = name.strip_prefix(disk.as_str()) else { return false };
        let digits = rest.strip_prefix('p').filter(|_| disk.ends_with(|c: char| c.is_ascii_digit())).unwrap_or(rest);
        !rest.is_empty() && !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
    })
}

/// One diskstats line: major, minor, name, then at least 11 counters.
pub fn parse_line(line: &[u8]) -> Option<Stat> {
    let mut it = line.split(|b| b.is_ascii_whitespace()).filter(|f| !f.is_empty());
    let (_major, _minor, name) = (it.next()?, it.next()?, it.next()?);
    let mut v = [0u64; 11];
    for slot in &mut v {
        *slot = std::str::from_utf8(it.next()?).ok()?.parse().ok()?;
    }
    Some(Stat {
        name: fs::decode(name),
        reads: v[0],
        read_sectors: v[2],
        writes: v[4],
        written_sectors: v[6],
        io_ticks_ms: v[9],
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn parse_table() {
        let s = parse_line(
            b" 179       0 mmcblk0 51234 3210 2456780 45670 18765 9876 1234568 98765 0 87650 144435 0 0 0 0 1 2",
        )
        .expect("line");
        assert_eq!(
            s,
            Stat {
                name: "mmcblk0".into(),
                reads: 51_234,
                read_sectors: 2_456_780,
                writes: 18_765,
                written_sectors: 1_234_568,
                io_ticks_ms: 87_650
            }
        );
        // Kernels before 4.18: 11 counters.
        assert!(parse_line(b"   8       0 sda 1 2 3 4 5 6 7 8 9 10 11").is_some());
        assert_eq!(parse_line(b"   8       0 sda 1 2 3 4 5 6 7 8 9 10"), None);
        assert_eq!(parse_line(b"   8       0 sda 1 2 x 4 5 6 7 8 9 10 11"), None);
        assert_eq!(parse_line(b""), None);
    }

    #[test]
    fn partitions_by_name_table() {
        let all: Vec<String> =
            ["sda", "sda1", "sdaa", "mmcblk0", "mmcblk0p2", "nvme0n1", "nvme0n1p1", "mtdblock0", "mtdblock1", "md0"]
                .map(String::from)
                .into();
        let parts: Vec<&str> = all.iter().filter(|n| is_partition_name(n, &all)).map(String::as_str).collect();
        assert_eq!(parts, ["sda1", "mmcblk0p2", "nvme0n1p1"]);
    }

    fn stat(name: &str, reads: u64, sectors: u64, ticks: u64) -> Stat {
        Stat { name: name.into(), reads, read_sectors: sectors, writes: 0, written_sectors: 0, io_ticks_ms: ticks }
    }

    #[test]
    fn rates_across_samples_resets_and_wraps() {
        let t0 = Instant::now();
        let mut d = DiskIo::default();
        let first = d.update(vec![stat("sda", 100, 1000, 500)], t0);
        assert_eq!((first[0].read_bytes, first[0].read_bytes_per_second, first[0].busy_percent), (512_000, None, None));

        let t1 = t0 + Duration::from_secs(2);
        let second = d.update(vec![stat("sda", 300, 3000, 1500), stat("mmcblk0", 1, 1, 1)], t1);
        let sda = &second[1];
        assert_eq!(sda.name, "sda");
        assert_eq!(
            (sda.read_bytes_per_second, sda.reads_per_second, sda.busy_percent),
            (Some(512_000), Some(100.0), Some(50.0))
        );
        assert_eq!(second[0].reads_per_second, None, "a new device has no rate");

        // sda recreated (counters small again): no rate; io_ticks past the interval: 100 %.
        let t2 = t1 + Duration::from_secs(1);
        let third = d.update(vec![stat("sda", 5, 5, 5_000)], t2);
        assert_eq!((third[0].reads_per_second, third[0].busy_percent), (None, Some(100.0)));

        // A 32-bit counter wraps.
        let mut w = DiskIo::default();
        w.update(vec![stat("sda", u64::from(u32::MAX) - 9, 0, 0)], t0);
        let wrapped = w.update(vec![stat("sda", 10, 0, 0)], t0 + Duration::from_secs(1));
        assert_eq!(wrapped[0].reads_per_second, Some(20.0));
        // The same instant twice: no division by zero.
        let same = w.update(vec![stat("sda", 20, 0, 0)], t0 + Duration::from_secs(1));
        assert_eq!(same[0].reads_per_second, None);
    }
}
