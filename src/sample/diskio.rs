//! Block device I/O from `<procfs>/diskstats`: per whole disk, bytes read and
//! written, operations, and over the sample interval their rates and how busy
//! the device was (`io_ticks`: milliseconds with I/O in flight).
//!
//! Whole disks are the entries of `<sysfs>/block` (partitions live below them).
//! diskstats is read to list them (every 60 s, and at once when one goes away);
//! each sample then reads the same counters from each listed disk's own
//! `<sysfs>/block/<disk>/stat` (the kernel renders both from the same per-CPU
//! counters; Documentation/block/stat.rst), kept open (`files::KeptFile`). That
//! costs one small file per disk instead of the whole table: rendering a device's
//! line counts its requests in flight, and a Raspberry Pi kernel lists 16 `ram`
//! and 8 `loop` devices nobody asked for (here, 7 µs for `vda` against 24 µs for
//! diskstats). Where `<sysfs>/block` cannot be read, diskstats is read every
//! sample instead, and a name that extends another listed name by digits (`sda1`,
//! `mmcblk0p2`, `nvme0n1p1`) is taken for a partition. Partitions are not
//! reported: their I/O is their disk's, and the mounts family already names them.
//! `loop*`, `ram*` and `zram*` are left out by default (`--disk-io-exclude`).
//!
//! Rates follow the network rules (`network::delta`): none for the first sample
//! of a device, a 32-bit wrap allowed for (the counters are `unsigned long`,
//! 32 bits on 32-bit kernels), a counter that went back otherwise is a reset and
//! gives no rate. Sectors are 512 bytes whatever the device's block size.
//! Keys are kernel names, unique (`names::make_unique`).

use std::path::Path;
use std::time::{Duration, Instant};

use super::files::{KeptFile, SMALL};
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

/// The previous sample's counters and the disks listed.
#[derive(Debug, Default)]
pub struct DiskIo {
    previous: Vec<Stat>,
    at: Option<Instant>,
    /// The listed disks and their kept-open `stat` files; `None` without
    /// `<sysfs>/block` (diskstats is then read every sample).
    devices: Option<Vec<(String, KeptFile)>>,
    listed_at: Option<Instant>,
    /// `<procfs>/diskstats`, kept open and read again from offset 0.
    diskstats: Option<KeptFile>,
}

/// The most of diskstats read: some 10,000 devices.
const MAX_TABLE: usize = 1024 * 1024;
/// How often the disks are listed again (a USB disk plugged in shows within it).
const RELIST: Duration = Duration::from_secs(60);

impl DiskIo {
    pub fn read(&mut self, procfs: &Path, sysfs: &Path, exclude: &GlobList, now: Instant) -> Option<Vec<BlockDevice>> {
        if self.listed_at.is_none_or(|t| now.saturating_duration_since(t) >= RELIST) {
            let stats = self.read_table(procfs)?;
            let whole = list_whole(&sysfs.join("block"));
            let names: Vec<String> = stats.iter().map(|s| s.name.clone()).collect();
            let is_whole = |s: &Stat| match &whole {
                Some(w) => w.binary_search(&s.name).is_ok(),
                None => !is_partition_name(&s.name, &names),
            };
            let kept: Vec<Stat> = stats.into_iter().filter(|s| is_whole(s) && !exclude.matches(&s.name)).collect();
            if whole.is_none() {
                // No sysfs: diskstats every sample.
                (self.devices, self.listed_at) = (None, None);
                return Some(self.update(kept, now));
            }
            let dir = sysfs.join("block");
            self.devices = Some(
                kept.into_iter()
                    .map(|s| (s.name.clone(), KeptFile::new(dir.join(&s.name).join("stat"), SMALL)))
                    .collect(),
            );
            self.listed_at = Some(now);
        }
        // The listed disks' own files, opened in the sample that lists them, so
        // that the descriptors the sampler keeps are all open after its first sample.
        let devices = self.devices.as_mut()?;
        let mut stats = Vec::with_capacity(devices.len());
        for (name, file) in devices.iter_mut() {
            match file.read() {
                Ok(text) => stats.extend(parse_counters(name, text.as_bytes())),
                Err(_) => self.listed_at = None, // gone: list again next sample
            }
        }
        Some(self.update(stats, now))
    }

    fn read_table(&mut self, procfs: &Path) -> Option<Vec<Stat>> {
        let file = self.diskstats.get_or_insert_with(|| KeptFile::new(procfs.join("diskstats"), MAX_TABLE));
        Some(file.read().ok()?.lines().filter_map(|l| parse_line(l.as_bytes())).collect())
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

/// One diskstats line: major, minor, name, then the counters.
pub fn parse_line(line: &[u8]) -> Option<Stat> {
    let mut it = line.split(|b| b.is_ascii_whitespace()).filter(|f| !f.is_empty());
    let (_major, _minor, name) = (it.next()?, it.next()?, it.next()?);
    counters(&fs::decode(name), &mut it)
}

/// At least 11 counters, as in diskstats after the name and in `<disk>/stat`:
/// reads, reads merged, sectors read, ms reading, writes, writes merged, sectors
/// written, ms writing, in flight, io_ticks (ms busy), weighted ms; later kernels
/// add discard and flush counters.
pub fn parse_counters(name: &str, text: &[u8]) -> Option<Stat> {
    counters(name, &mut text.split(|b| b.is_ascii_whitespace()).filter(|f| !f.is_empty()))
}

fn counters(name: &str, it: &mut dyn Iterator<Item = &[u8]>) -> Option<Stat> {
    let mut v = [0u64; 11];
    for slot in &mut v {
        *slot = std::str::from_utf8(it.next()?).ok()?.parse().ok()?;
    }
    Some(Stat {
        name: name.to_owned(),
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
        // A disk's own stat file: the same counters without major, minor and name.
        let own = parse_counters("vda", b"  681856    38757 22047818   619206   148404   319130 82274032   360362        0    63400  1001150   269065       65 34575592    20347     8352     1234\n");
        assert_eq!(
            own.map(|s| (s.reads, s.read_sectors, s.writes, s.written_sectors, s.io_ticks_ms)),
            Some((681_856, 22_047_818, 148_404, 82_274_032, 63_400))
        );
        assert_eq!(parse_counters("x", b"1 2 3"), None);
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

    // Listed from diskstats, read from each disk's own stat file; partitions and
    // loop devices are not read at all; the list is made again every 60 s.
    #[test]
    fn listed_disks_are_read_from_their_own_stat_files() {
        let root = std::env::temp_dir().join(format!("fluxstat-diskio-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let (proc, sys) = (root.join("proc"), root.join("sys"));
        for d in ["sda", "loop0", "sdb"] {
            std::fs::create_dir_all(sys.join("block").join(d)).expect("dirs");
        }
        std::fs::create_dir_all(&proc).expect("dirs");
        let line = |n: &str, sectors: u64| format!("   8 0 {n} 10 0 {sectors} 0 0 0 0 0 0 100 0\n");
        let table = [line("sda", 1000), line("sda1", 1000), line("loop0", 5), line("sdb", 7)].concat();
        std::fs::write(proc.join("diskstats"), table).expect("write");
        let own = |d: &str, sectors: u64| {
            std::fs::write(sys.join("block").join(d).join("stat"), format!("10 0 {sectors} 0 0 0 0 0 0 100 0\n"))
                .expect("write")
        };
        own("sda", 1000);
        own("sdb", 7);
        let exclude = GlobList::parse(DEFAULT_EXCLUDE);
        let t0 = Instant::now();
        let mut d = DiskIo::default();
        let first = d.read(&proc, &sys, &exclude, t0).expect("read");
        assert_eq!(first.iter().map(|b| b.name.as_str()).collect::<Vec<_>>(), ["sda", "sdb"]);
        own("sda", 3048); // 1 MiB more, in sda's own file only
        let second = d.read(&proc, &sys, &exclude, t0 + Duration::from_secs(1)).expect("read");
        assert_eq!(second[0].read_bytes_per_second, Some(1 << 20));
        std::fs::remove_dir_all(sys.join("block/sdb")).expect("unplug");
        std::fs::write(proc.join("diskstats"), [line("sda", 3048), line("loop0", 5)].concat()).expect("write");
        // A regular file stays readable once open (sysfs answers ENODEV, which
        // lists again at once): here the unplugged disk goes at the next listing.
        let later = d.read(&proc, &sys, &exclude, t0 + Duration::from_secs(61)).expect("read");
        assert_eq!(
            later.iter().map(|b| (b.name.as_str(), b.read_bytes_per_second)).collect::<Vec<_>>(),
            [("sda", Some(0))]
        );
        let _ = std::fs::remove_dir_all(&root);
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
