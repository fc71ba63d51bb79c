//! The sampler: reads the machine on a timer on its own thread, and publishes
//! each sample as serialised bytes.
//!
//! It runs off the executor thread so that a slow `/proc` read or a slow
//! filesystem never stalls a response; the responder keeps serving the previous
//! sample meanwhile (and `/health` turns 503 if sampling stalls for three
//! intervals). It reads only what it reports and never scans the process table:
//! sysinfo computes CPU usage from /proc/stat; every other family is read from
//! `--procfs`/`--sysfs` by its own module (one per family), so those options
//! apply and tests can point the readers at fixture trees.
//!
//! This is the one place that picks the platform: on Windows, `windows` has the
//! `Sampler::sample` that reads the machine, on macOS `macos` has it; the Linux readers that call
//! Unix-only functions (`host`, `own`) are left out there, and `disk` and `network`
//! lend their filters, `DiskReader` and `Rates`, which are platform-neutral.

pub mod cpu;
pub mod disk;
#[cfg(not(windows))]
pub mod host;
pub mod load;
#[cfg(any(target_vendor = "apple", test))]
pub mod macos;
pub mod memory;
pub mod network;
#[cfg(not(windows))]
pub mod own;
pub mod temperature;
#[cfg(windows)]
pub mod windows;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::published::{Latest, Published};
use crate::server::Stats;
use crate::snapshot::{Host, Own, Snapshot};

/// The shortest CPU window sysinfo measures (`sysinfo::MINIMUM_CPU_UPDATE_INTERVAL`):
/// closer readings are skipped by sysinfo and would republish stale figures.
pub const MIN_CPU_WINDOW: Duration = sysinfo::MINIMUM_CPU_UPDATE_INTERVAL;

/// How often host facts (hostname, OS, kernel, model) are read again.
const HOST_REFRESH: Duration = Duration::from_secs(60);
/// How often processes are counted again: listing /proc costs the kernel about
/// 0.1 ms per hundred processes (examples/sample_cost), the largest share of a
/// sample, for a figure that moves slowly.
const PROCESSES_REFRESH: Duration = Duration::from_secs(5);

/// Where the readers find the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roots {
    /// `--procfs`, default `/proc`.
    pub procfs: PathBuf,
    /// `--sysfs`, default `/sys`.
    pub sysfs: PathBuf,
    /// `/`; only tests point it elsewhere (for /etc/os-release and /tmp/sysinfo).
    pub rootfs: PathBuf,
}

impl Default for Roots {
    fn default() -> Self {
        Roots { procfs: "/proc".into(), sysfs: "/sys".into(), rootfs: "/".into() }
    }
}

/// What the sampler needs from the configuration.
#[derive(Debug, Clone)]
pub struct SamplerConfig {
    pub interval: Duration,
    pub disks: disk::DiskFilter,
    pub network: network::NetFilter,
    pub roots: Roots,
    /// The responder's counters, reported in the document's `fluxstat` section.
    pub stats: Arc<Stats>,
}

impl SamplerConfig {
    pub fn new(interval: Duration) -> SamplerConfig {
        SamplerConfig {
            interval,
            disks: disk::DiskFilter::default(),
            network: network::NetFilter::default(),
            roots: Roots::default(),
            stats: Arc::default(),
        }
    }
}

/// Reads one snapshot at a time.
pub struct Sampler {
    sys: sysinfo::System,
    #[cfg(windows)]
    cpu: windows::cpu::Meter,
    #[cfg(target_vendor = "apple")]
    lists: macos::Lists,
    config: SamplerConfig,
    last_cpu_refresh: Instant,
    seq: u64,
    failed: Vec<&'static str>,
    rates: network::Rates,
    // macOS reads disks through sysinfo (macos::Lists).
    #[cfg_attr(target_vendor = "apple", allow(dead_code))]
    disks: disk::DiskReader,
    host: Option<(Instant, Host)>,
    processes: Option<(Instant, Option<u64>)>,
}

#[derive(Debug)]
pub struct SamplerError(String);

impl std::fmt::Display for SamplerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Sampler {
    /// Creates the sampler and takes the first CPU reading (the start of the first window).
    pub fn new(config: SamplerConfig) -> Result<Sampler, SamplerError> {
        #[allow(unused_mut)] // only refreshed here where sysinfo reads the CPU
        let mut sys = sysinfo::System::new().map_err(|e| SamplerError(format!("cannot read system figures: {e}")))?;
        #[cfg(not(windows))]
        sys.refresh_cpu_usage();
        // Half an interval for statvfs of all mounts, within 1..2 s: a loaded router
        // may not schedule the worker for a good while, and only a mount that
        // really hangs ever costs the wait (once; it is skipped afterwards).
        let disk_timeout = (config.interval / 2).clamp(Duration::from_secs(1), Duration::from_secs(2));
        Ok(Sampler {
            sys,
            #[cfg(windows)]
            cpu: windows::cpu::Meter::start(),
            #[cfg(target_vendor = "apple")]
            lists: macos::Lists::new(),
            config,
            last_cpu_refresh: Instant::now(),
            seq: 0,
            failed: Vec::new(),
            rates: network::Rates::default(),
            disks: disk::DiskReader::new(disk_timeout),
            host: None,
            processes: None,
        })
    }

    /// Reads everything the document reports. The CPU figures cover the time since
    /// the previous call (or since `new`).
    #[cfg(not(any(windows, target_vendor = "apple")))]
    pub fn sample(&mut self) -> Snapshot {
        let started = Instant::now();
        self.last_cpu_refresh = started;
        self.sys.refresh_cpu_usage();
        let roots = &self.config.roots;
        let (memory, swap) = memory::read(&roots.procfs);
        let host = match &self.host {
            Some((at, host)) if at.elapsed() < HOST_REFRESH => host.clone(),
            _ => {
                let host = host::read(&roots.procfs, &roots.sysfs, &roots.rootfs);
                self.host = Some((started, host.clone()));
                host
            }
        };
        let processes = match self.processes {
            Some((at, n)) if at.elapsed() < PROCESSES_REFRESH => n,
            _ => {
                let n = host::count_processes(&roots.procfs);
                self.processes = Some((started, n));
                n
            }
        };
        let mut snapshot = Snapshot {
            uptime: load::read_uptime(&roots.procfs),
            cpu: cpu::read(&self.sys),
            memory,
            swap,
            load: load::read_load(&roots.procfs),
            disks: self.disks.read(&roots.procfs, &self.config.disks),
            network: network::read(&roots.procfs, &self.config.network, &mut self.rates, started),
            temperatures: temperature::read(&roots.sysfs),
            host: Some(host),
            processes,
            own: Own::default(),
            taken_at_us: unix_micros(SystemTime::now()),
        };
        let stats = &self.config.stats;
        snapshot.own = Own {
            interval_ms: u64::try_from(self.config.interval.as_millis()).unwrap_or(u64::MAX),
            sample_duration_us: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            rss_bytes: own::rss_bytes(),
            cpu_time_ms: own::cpu_time_ms(),
            connections_open: stats.open.load(Ordering::Relaxed) as u64,
            requests_served: stats.requests.load(Ordering::Relaxed),
        };
        self.note_failures(&snapshot);
        snapshot
    }

    /// Samples and serialises.
    pub fn publish(&mut self) -> Published {
        let snapshot = self.sample();
        self.seq += 1;
        Published::new(&snapshot, self.seq, Instant::now())
    }

    /// Logs once when a family starts failing and once when it recovers.
    fn note_failures(&mut self, s: &Snapshot) {
        let now = s.unavailable();
        #[cfg(windows)]
        let now: Vec<&str> = now.into_iter().filter(|n| !windows::ABSENT.contains(n)).collect();
        for name in now.iter().filter(|n| !self.failed.contains(n)) {
            crate::warn!("{name} figures unavailable; serving null until they return");
        }
        for name in self.failed.iter().filter(|n| !now.contains(n)) {
            crate::info!("{name} figures available again");
        }
        self.failed = now;
    }

    /// When the next sample may be taken: on the interval grid, but never sooner
    /// than one CPU window after the previous reading.
    fn next_tick(&self, grid: Instant) -> Instant {
        grid.max(self.last_cpu_refresh + MIN_CPU_WINDOW)
    }
}

/// Starts sampling: takes the first sample with a real CPU window (this blocks for
/// one window, about 200 ms), then moves the sampler to its own thread, which
/// publishes into the returned slot every interval. The thread ends once the slot
/// is dropped.
pub fn start(config: SamplerConfig) -> Result<Arc<Latest>, SamplerError> {
    let mut sampler = Sampler::new(config)?;
    std::thread::sleep(MIN_CPU_WINDOW);
    let latest = Arc::new(Latest::new(sampler.publish()));
    let weak = Arc::downgrade(&latest);
    std::thread::Builder::new()
        .name("sampler".into())
        .spawn(move || run(sampler, weak))
        .map_err(|e| SamplerError(format!("cannot start the sampler thread: {e}")))?;
    Ok(latest)
}

fn run(mut sampler: Sampler, latest: Weak<Latest>) {
    let interval = sampler.config.interval;
    let mut grid = Instant::now() + interval;
    loop {
        let due = sampler.next_tick(grid);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        let published = sampler.publish();
        match latest.upgrade() {
            Some(slot) => slot.store(published),
            None => return,
        }
        grid += interval;
        let now = Instant::now();
        if grid < now {
            // Fell behind (suspended machine, stalled filesystem): skip the missed
            // ticks rather than sampling in a burst.
            grid = now + interval;
        }
    }
}

/// Sorts a short list (mounts, interfaces, sensors: tens of entries) by `key`,
/// keeping equal keys in order. Insertion sort is as quick as any at this size,
/// and it is a few dozen instructions per list type, where the standard library's
/// sort costs kilobytes of code for every type it is used with.
pub(crate) fn sort_short<T, K: Ord + ?Sized>(v: &mut [T], key: impl Fn(&T) -> &K) {
    for i in 1..v.len() {
        let mut j = i;
        while j > 0 && key(&v[j - 1]) > key(&v[j]) {
            v.swap(j - 1, j);
            j -= 1;
        }
    }
}

/// A small sysfs/procfs file's content without surrounding blanks or the NUL some
/// (device-tree) files end with; `None` when unreadable or empty.
pub(crate) fn read_trimmed(path: &std::path::Path) -> Option<String> {
    let s = std::fs::read_to_string(path).ok()?;
    let s = s.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    (!s.is_empty()).then(|| s.to_owned())
}

/// Microseconds since the Unix epoch; clocks set before 1970 read as the epoch.
pub fn unix_micros(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::sort_short;

    #[test]
    fn sort_short_orders_by_key_and_keeps_equal_keys_in_order() {
        let cases: [&[(&str, u8)]; 5] = [
            &[],
            &[("eth0", 0)],
            &[("wlan0", 0), ("br-lan", 1), ("eth1", 2), ("eth0", 3)],
            &[("b", 0), ("a", 1), ("b", 2), ("a", 3), ("c", 4), ("a", 5)],
            &[("a", 0), ("b", 1), ("c", 2)],
        ];
        for case in cases {
            let mut got = case.to_vec();
            sort_short(&mut got, |e| e.0);
            let mut want = case.to_vec();
            want.sort_by(|a, b| a.0.cmp(b.0)); // stable
            assert_eq!(got, want, "{case:?}");
        }
        let mut numbers = vec![(10u64, "x"), (2, "y"), (1, "z")];
        sort_short(&mut numbers, |e| &e.0);
        assert_eq!(numbers, [(1, "z"), (2, "y"), (10, "x")]);
    }
}
