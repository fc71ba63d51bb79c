//! The sampler: reads the machine on a timer on its own thread, and publishes
//! each sample as serialised bytes.
//!
//! It runs off the executor thread so that a slow `/proc` read or a slow
//! filesystem never stalls a response; the responder keeps serving the previous
//! sample meanwhile (and `/health` turns 503 if sampling stalls for three
//! intervals). It reads only what it reports and never scans the process table.
//! Each family is read by its own module; all but CPU usage (always the running
//! kernel's `/proc/stat`) from `--procfs`/`--sysfs`, so those options apply and
//! tests can point the readers at fixture trees.
//!
//! **No read can stall sampling.** Reads that call into device drivers run under
//! a deadline on a helper thread (`worker`): the temperature family (thermal
//! zones and hwmon chips talk to sensors over I²C, SMBus or firmware, and a wedged
//! driver holds a `read` for seconds) together with fans, the Pi's power flags,
//! CPU frequency and Wi-Fi (one job, `drivers`), and statvfs (`disk`, a worker of
//! its own). Also on the sampler thread, and cheap: `disk_io` and `conntrack`
//! (kept-open files), and, every 10 or 60 s, DHCP leases, flash wear and the
//! reboot flag (`slow`).
//! The temperature readers run on their thread's own timer just before each tick,
//! so their result is usually waiting when the sample needs it. They get half an
//! interval, 250 ms to 1 s; past that the whole family is `null` (the key stays,
//! with `null`: which sensor blocked is not known until it returns), one warning
//! says so, and while the job is still stuck the family is skipped without
//! queueing more work; when it returns, a fresh run follows, the family is back and
//! an info line says so. A machine with no sensor at all is looked at again every
//! 60 s only. Everything else runs on the sampler
//! thread: procfs files are rendered from kernel memory and do not block, and
//! host's device-tree and DMI files are in-memory tables. Every read is bounded in
//! size (`files`): 4 KiB for one value, 64 KiB for a table, 256 KiB for `/proc/stat`.
//!
//! **Why a family is null, and `/health`.** A family is `null` either because the
//! machine does not provide it (no sensors on a VM, a file the kernel lacks) or
//! because of fluxstat itself: a reader past its deadline, or the process out of
//! descriptors or memory (EMFILE, ENFILE, ENOMEM, or no thread for the worker).
//! The second kind makes the sample *degraded*: `/health` answers 503 with
//! `"message":"degraded: <families>"` (see `published`), so a supervisor can act;
//! the first kind only lists the family in `unavailable`, with 200. The sampler's
//! own files (CPU, memory, load, uptime, its own figures, the process count) stay
//! open, so they need no new descriptor each sample; for the readers that open
//! files each time (disk, network, temperature), a family that comes back `null`
//! (or, for temperature, with no sensor) is blamed on fluxstat when this process
//! cannot open one more descriptor at that moment.
//!
//! At `--log-level debug` each sample logs its duration, and each reader failure
//! its path and OS error.
//!
//! **Platforms.** This is the one place that picks the platform. Everything above
//! is Linux (and any other system with a procfs): `Sampler::new` and `sample` below.
//! On Windows, `windows` has the `Sampler::new` and `sample` that read the machine
//! through Win32 and sysinfo; on macOS, `macos` has them, on sysinfo. The readers
//! that only make sense with a procfs (`files`, `host`, `own`) are left out on
//! Windows; `disk` and `network` lend every platform their filters, `DiskReader`
//! (statvfs, or its Windows equivalent, under a deadline) and `Rates`. The
//! platform's own parts of the `Sampler` are the fields marked with its `cfg`.

#[cfg(procfs)]
pub mod conntrack;
pub mod cpu;
#[cfg(procfs)]
pub mod cpufreq;
#[cfg(procfs)]
pub mod dhcp;
pub mod disk;
#[cfg(procfs)]
pub mod diskio;
#[cfg(procfs)]
pub mod drivers;
#[cfg(procfs)]
pub mod fans;
#[cfg(not(windows))]
pub mod files;
#[cfg(procfs)]
pub mod flash;
pub mod fs;
#[cfg(not(windows))]
pub mod host;
pub mod load;
#[cfg(any(target_vendor = "apple", test))]
pub mod macos;
pub mod memory;
pub mod names;
pub mod network;
#[cfg(not(windows))]
pub mod own;
#[cfg(procfs)]
pub mod power;
#[cfg(procfs)]
pub mod reboot;
#[cfg(procfs)]
pub mod slow;
pub mod temperature;
#[cfg(procfs)]
pub mod wifi;
#[cfg(windows)]
pub mod windows;
pub mod worker;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::published::{Latest, Published};
use crate::server::Stats;
use crate::snapshot::{Host, Own, Snapshot};
#[cfg(procfs)]
use {
    crate::log::Level,
    drivers::Drivers,
    files::{KeptFile, Miss, SMALL, TABLE},
    worker::{Refused, Worker},
};

// The first sample's hand-over (`Starting`) is a socket pair, which the executor
// can wait on; Windows has none: a loopback connection there (`windows::Pair`).
#[cfg(unix)]
use std::os::unix::net::UnixStream as Ready;
#[cfg(windows)]
use {crate::windows::Pair as _, std::net::TcpStream as Ready};

// The families a platform does not have (`note_failures`).
#[cfg(target_vendor = "apple")]
use macos::ABSENT;
#[cfg(windows)]
use windows::ABSENT;

// This platform's default `--disk-exclude-fs`, `--disk-exclude-mount` and `--net-exclude`.
#[cfg(target_vendor = "apple")]
pub use macos::{DEFAULT_EXCLUDE_FS, DEFAULT_EXCLUDE_MOUNT, DEFAULT_NET_EXCLUDE};
#[cfg(windows)]
pub use windows::{DEFAULT_EXCLUDE_FS, DEFAULT_EXCLUDE_MOUNT, DEFAULT_NET_EXCLUDE};
#[cfg(procfs)]
pub use {
    disk::{DEFAULT_EXCLUDE_FS, DEFAULT_EXCLUDE_MOUNT},
    diskio::DEFAULT_EXCLUDE as DEFAULT_DISK_IO_EXCLUDE,
    network::DEFAULT_EXCLUDE as DEFAULT_NET_EXCLUDE,
};
/// `disk_io` is read from procfs and sysfs only: nothing to leave out elsewhere.
#[cfg(not(procfs))]
pub const DEFAULT_DISK_IO_EXCLUDE: &str = "";

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
    /// Block devices left out of `disk_io` (`--disk-io-exclude`).
    pub disk_io_exclude: crate::glob::GlobList,
    /// `--dhcp-leases`; empty: dnsmasq's usual files under `rootfs`.
    pub dhcp_leases: Vec<PathBuf>,
    pub roots: Roots,
    /// The responder's counters, reported in the document's `fluxstat` section.
    pub stats: Arc<Stats>,
    /// The pushers' counters, likewise; with a pusher on, each `Published`
    /// carries its `Snapshot` for them.
    #[cfg(feature = "push")]
    pub push: Arc<crate::push::Counters>,
}

impl SamplerConfig {
    /// fluxstat's own figures for a sample that took `took`, with this platform's
    /// reading of the process's RSS and CPU time.
    fn own(&self, took: Duration, rss_bytes: Option<u64>, cpu_time_ms: Option<u64>) -> Own {
        Own {
            interval_ms: u64::try_from(self.interval.as_millis()).unwrap_or(u64::MAX),
            sample_duration_us: u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            rss_bytes,
            cpu_time_ms,
            connections_open: self.stats.open.load(Ordering::Relaxed) as u64,
            requests_served: self.stats.requests_served(),
            #[cfg(feature = "push")]
            influx: self.push.influx.read(),
            #[cfg(feature = "push")]
            mqtt: self.push.mqtt.read(),
        }
    }

    pub fn new(interval: Duration) -> SamplerConfig {
        SamplerConfig {
            interval,
            disks: disk::DiskFilter::default(),
            network: network::NetFilter::default(),
            disk_io_exclude: crate::glob::GlobList::parse(DEFAULT_DISK_IO_EXCLUDE),
            dhcp_leases: Vec::new(),
            roots: Roots::default(),
            stats: Arc::default(),
            #[cfg(feature = "push")]
            push: Arc::default(),
        }
    }
}

/// Why a family is `null` because of fluxstat itself (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// Its reader did not answer within its deadline, or is still stuck.
    Deadline,
    /// Out of descriptors or memory, or no thread could be started for it.
    Shortage,
}

/// The files read every sample, kept open.
#[cfg(procfs)]
#[derive(Debug)]
struct Files {
    meminfo: KeptFile,
    loadavg: KeptFile,
    uptime: KeptFile,
    own: own::OwnFiles,
    processes: host::ProcessCounter,
}

/// Reads one snapshot at a time.
pub struct Sampler {
    /// CPU usage: sysinfo keeps the previous /proc/stat reading.
    sys: sysinfo::System,
    config: SamplerConfig,
    last_cpu_refresh: Instant,
    seq: u64,
    /// The families null in the previous sample, with their cause if fluxstat's own.
    failed: Vec<(&'static str, Option<Cause>)>,
    /// The families of the current sample that are null because of fluxstat.
    degraded: Vec<(&'static str, Cause)>,
    rates: network::Rates,
    // macOS reads disks through sysinfo (`macos::Lists`).
    #[cfg_attr(target_vendor = "apple", allow(dead_code))]
    disks: disk::DiskReader,
    #[cfg(procfs)]
    files: Files,
    /// Temperatures, fans, power, CPU frequency, Wi-Fi (`drivers`).
    #[cfg(procfs)]
    drivers: Worker<Drivers>,
    /// The driver families present in the last run: blamed when the worker is late.
    #[cfg(procfs)]
    drivers_present: Vec<&'static str>,
    #[cfg(procfs)]
    disk_io: diskio::DiskIo,
    #[cfg(procfs)]
    conntrack: conntrack::ConntrackFiles,
    /// DHCP leases, flash wear, the reboot flag.
    #[cfg(procfs)]
    slow: slow::Slow,
    /// How long a sample waits for the temperature readers.
    deadline: Duration,
    /// When `run` takes the next sample: the temperature readers run just before.
    next_tick: Option<Instant>,
    /// When the temperature readers last found no sensor at all.
    #[cfg(procfs)]
    sensorless_since: Option<Instant>,
    /// Windows: CPU times (`windows::cpu`).
    #[cfg(windows)]
    cpu: windows::cpu::Meter,
    /// macOS: sysinfo's disk and network lists.
    #[cfg(target_vendor = "apple")]
    lists: macos::Lists,
    host: Option<(Instant, Host)>,
    processes: Option<(Instant, u64)>,
}

#[derive(Debug)]
pub struct SamplerError(String);

impl std::fmt::Display for SamplerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The deadline of the readers that call into drivers: half an interval, within
/// 250 ms..1 s, so that no reader delays start-up by more than about a second.
pub fn reader_deadline(interval: Duration) -> Duration {
    (interval / 2).clamp(Duration::from_millis(250), Duration::from_secs(1))
}

/// The procfs platform's readers (Linux); Windows' and macOS' are in their modules.
#[cfg(procfs)]
impl Sampler {
    /// Creates the sampler and takes the first CPU reading (the start of the first window).
    pub fn new(config: SamplerConfig) -> Result<Sampler, SamplerError> {
        // Half an interval for statvfs of all mounts, within 1..2 s: a loaded router
        // may not schedule the worker for a good while, and only a mount that
        // really hangs ever costs the wait (once; it is skipped afterwards).
        let disk_timeout = (config.interval / 2).clamp(Duration::from_secs(1), Duration::from_secs(2));
        let procfs = &config.roots.procfs;
        let (sysfs, interval) = (config.roots.sysfs.clone(), config.interval);
        let mut sys = sysinfo::System::new().map_err(|e| SamplerError(format!("cannot read system figures: {e}")))?;
        // The start of the first CPU window; a failure shows in the first sample.
        sys.refresh_cpu_usage();
        let files = Files {
            meminfo: KeptFile::new(procfs.join("meminfo"), TABLE),
            loadavg: KeptFile::new(procfs.join("loadavg"), SMALL),
            uptime: KeptFile::new(procfs.join("uptime"), SMALL),
            own: own::OwnFiles::default(),
            processes: host::ProcessCounter::new(procfs),
        };
        let conntrack = conntrack::ConntrackFiles::new(procfs);
        Ok(Sampler {
            sys,
            deadline: reader_deadline(config.interval),
            config,
            last_cpu_refresh: Instant::now(),
            seq: 0,
            failed: Vec::new(),
            degraded: Vec::new(),
            rates: network::Rates::default(),
            disks: disk::DiskReader::new(disk_timeout),
            files,
            drivers: {
                let job = drivers::Job::new(sysfs);
                Worker::new("sensors", interval, move || job.run())
            },
            drivers_present: vec!["temperature"],
            disk_io: diskio::DiskIo::default(),
            conntrack,
            slow: slow::Slow::default(),
            next_tick: None,
            sensorless_since: None,
            host: None,
            processes: None,
        })
    }

    /// Reads everything the document reports. The CPU figures cover the time since
    /// the previous call (or since `new`).
    pub fn sample(&mut self) -> Snapshot {
        let started = Instant::now();
        self.degraded.clear();
        let mut misses: Vec<(&'static str, Miss)> = Vec::new();
        self.last_cpu_refresh = started;
        let roots = &self.config.roots;
        self.sys.refresh_cpu_usage();
        let cpu = cpu::read(&self.sys);
        let files = &mut self.files;
        let (memory, swap) = match files.meminfo.read() {
            Ok(text) => memory::parse(text),
            Err(m) => {
                misses.push(("memory", m));
                (None, None)
            }
        };
        let load = files.loadavg.read().map(load::parse_load);
        let uptime = files.uptime.read().map(load::parse_uptime);
        let host = match &self.host {
            Some((at, host)) if at.elapsed() < HOST_REFRESH => host.clone(),
            _ => {
                let host = host::read(&roots.procfs, &roots.sysfs, &roots.rootfs);
                self.host = Some((started, host.clone()));
                host
            }
        };
        let processes = match self.processes {
            Some((at, n)) if at.elapsed() < PROCESSES_REFRESH => Some(n),
            _ => {
                // A failed count is tried again next sample, with its cause known.
                let n = files.processes.count().map_err(|m| misses.push(("processes", m))).ok();
                self.processes = n.map(|n| (started, n));
                n
            }
        };
        let mut snapshot = Snapshot {
            uptime: keep("uptime", uptime, &mut misses),
            cpu,
            memory,
            swap,
            load: keep("load", load, &mut misses),
            disks: self.disks.read(&roots.procfs, &self.config.disks),
            network: network::read(&roots.procfs, &self.config.network, &mut self.rates, started),
            temperatures: None,
            host: Some(host),
            processes,
            disk_io: self.disk_io.read(&roots.procfs, &roots.sysfs, &self.config.disk_io_exclude, started),
            conntrack: self.conntrack.read(),
            ..Snapshot::default()
        };
        self.slow.fill(&mut snapshot, roots, &self.config.dhcp_leases, started);
        if let Some(d) = self.collect_drivers(started + self.deadline) {
            snapshot.temperatures = d.temperatures;
            (snapshot.fans, snapshot.power, snapshot.cpu_frequency, snapshot.wifi) =
                (d.fans, d.power, d.cpu_frequency, d.wifi);
        }
        snapshot.taken_at_us = unix_micros(SystemTime::now());
        self.explain(&snapshot, &misses);
        let own = &mut self.files.own;
        let took = started.elapsed();
        snapshot.own = self.config.own(took, own.rss_bytes(), own.cpu_time_ms());
        crate::debug!("sample took {} µs", took.as_micros());
        self.note_failures(&snapshot);
        snapshot
    }

    /// The driver readers' results (`drivers`), from their worker; `None` (and
    /// the families they last had degraded) when they are past the deadline,
    /// still stuck, or have no thread. A machine where they find nothing at all is
    /// looked at again every `HOST_REFRESH` only, with the worker's timer stopped
    /// meanwhile: VMs and some boards have none.
    fn collect_drivers(&mut self, deadline: Instant) -> Option<Drivers> {
        if self.sensorless_since.is_some_and(|at| at.elapsed() < HOST_REFRESH) {
            return Some(Drivers { temperatures: Some(Vec::new()), ..Drivers::default() });
        }
        let cause = match self.drivers.collect(deadline, self.next_tick) {
            Ok(t) if t.is_empty() => match files::descriptor_shortage() {
                // No sensor file could be opened: unknown, not none.
                Some(e) => {
                    crate::debug!("temperature: no sensors while this process cannot open files: {e}");
                    Cause::Shortage
                }
                None => {
                    self.sensorless_since = Some(Instant::now());
                    self.drivers.pause();
                    return Some(Drivers { temperatures: Some(Vec::new()), ..t });
                }
            },
            Ok(t) => {
                self.sensorless_since = None;
                let present = [
                    ("fans", t.fans.is_some()),
                    ("power", t.power.is_some()),
                    ("cpu_frequency", t.cpu_frequency.is_some()),
                    ("wifi", t.wifi.is_some()),
                ];
                self.drivers_present = vec!["temperature"];
                self.drivers_present.extend(present.iter().filter(|p| p.1).map(|p| p.0));
                return Some(t);
            }
            Err(Refused::Late) => {
                crate::debug!("temperature: the readers did not answer within {} ms", self.deadline.as_millis());
                Cause::Deadline
            }
            Err(Refused::Stuck) => {
                crate::debug!("temperature: the readers of an earlier sample are still stuck; skipped");
                Cause::Deadline
            }
            Err(Refused::Spawn(e)) => {
                crate::debug!("temperature: cannot start the sensors thread: {e}");
                Cause::Shortage
            }
        };
        self.degraded.extend(self.drivers_present.iter().map(|f| (*f, cause)));
        None
    }

    /// Logs the readers' failures at debug and finds the families that are null
    /// because of fluxstat itself.
    fn explain(&mut self, s: &Snapshot, misses: &[(&'static str, Miss)]) {
        for (family, miss) in misses {
            crate::debug!("{family}: cannot read {miss}");
            if miss.is_resource_shortage() && !self.is_degraded(family) {
                self.degraded.push((family, Cause::Shortage));
            }
        }
        let mut blind: Vec<&'static str> = s.unavailable();
        blind.retain(|f| !self.is_degraded(f) && !misses.iter().any(|(m, _)| m == f));
        if blind.is_empty() {
            return;
        }
        // Readers that open files each sample cannot say why they failed; if this
        // process cannot open a descriptor now, that is the likely reason.
        match files::descriptor_shortage() {
            Some(e) => {
                crate::debug!("{}: unavailable while this process cannot open files: {e}", blind.join(", "));
                self.degraded.extend(blind.into_iter().map(|f| (f, Cause::Shortage)));
            }
            None if crate::log::enabled(Level::Debug) => {
                crate::debug!("{}: unavailable (read from {})", blind.join(", "), self.config.roots.procfs.display());
            }
            None => {}
        }
    }
}

impl Sampler {
    #[cfg_attr(not(procfs), allow(dead_code))]
    fn is_degraded(&self, family: &str) -> bool {
        self.degraded.iter().any(|(f, _)| *f == family)
    }

    /// The families of the last sample that are null because of fluxstat itself.
    pub fn degraded(&self) -> Vec<&'static str> {
        self.degraded.iter().map(|(f, _)| *f).collect()
    }

    /// Samples and serialises.
    pub fn publish(&mut self) -> Published {
        let snapshot = self.sample();
        self.seq += 1;
        #[cfg(feature = "push")]
        return self.for_pushers(snapshot);
        #[cfg(not(feature = "push"))]
        Published::with_health(&snapshot, self.seq, Instant::now(), &self.degraded())
    }

    /// Serialises `snapshot`; with a pusher on, the `Published` carries it too.
    #[cfg(feature = "push")]
    fn for_pushers(&self, snapshot: Snapshot) -> Published {
        let mut published = Published::with_health(&snapshot, self.seq, Instant::now(), &self.degraded());
        if self.config.push.any() {
            published.snapshot = Some(Arc::new(snapshot));
        }
        published
    }

    /// Logs once when a family starts failing (or its cause changes) and once when
    /// it recovers.
    fn note_failures(&mut self, s: &Snapshot) {
        let now: Vec<(&'static str, Option<Cause>)> = s
            .unavailable()
            .into_iter()
            .map(|f| (f, self.degraded.iter().find(|(d, _)| *d == f).map(|(_, c)| *c)))
            .collect();
        // The families this platform does not have are null for good: no warning.
        #[cfg(not(procfs))]
        let now: Vec<_> = now.into_iter().filter(|(f, _)| !ABSENT.contains(f)).collect();
        for &(name, cause) in now.iter().filter(|n| !self.failed.contains(n)) {
            match cause {
                None => crate::warn!("{name} figures unavailable; serving null until they return"),
                Some(Cause::Deadline) => crate::warn!(
                    "{name} readers did not answer within {} ms (a driver blocks?); serving null until they return",
                    self.deadline.as_millis()
                ),
                Some(Cause::Shortage) => crate::warn!(
                    "{name} figures unavailable: fluxstat is out of file descriptors or memory; \
                     serving null and /health 503 until they return"
                ),
            }
        }
        for (name, _) in self.failed.iter().filter(|(n, _)| !now.iter().any(|(m, _)| m == n)) {
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

/// The value of a kept file's parse, or the miss recorded.
#[cfg(procfs)]
fn keep<T>(family: &'static str, r: Result<Option<T>, Miss>, misses: &mut Vec<(&'static str, Miss)>) -> Option<T> {
    r.map_err(|m| misses.push((family, m))).ok().flatten()
}

/// The first sample, on its way: the sampler thread takes it (one CPU window,
/// about 200 ms, plus at most one reader deadline) while the caller waits for it
/// in a way that lets it also wait for a signal.
pub struct Starting {
    first: Arc<Mutex<Option<Result<Arc<Latest>, SamplerError>>>>,
    ready: Ready,
}

/// Starts the sampler thread. It takes the first sample with a real CPU window,
/// hands it over (see `Starting`), then publishes into that slot every interval;
/// it ends once the slot is dropped.
pub fn spawn(config: SamplerConfig) -> Result<Starting, SamplerError> {
    let (ready, tell) = Ready::pair().map_err(|e| SamplerError(format!("cannot start the sampler: {e}")))?;
    let first = Arc::new(Mutex::new(None));
    let slot = Arc::clone(&first);
    std::thread::Builder::new()
        .name("sampler".into())
        .spawn(move || {
            let mut sampler = match Sampler::new(config) {
                Ok(s) => s,
                Err(e) => {
                    *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(Err(e));
                    let _ = (&tell).write_all(b"!");
                    return;
                }
            };
            std::thread::sleep(MIN_CPU_WINDOW);
            let grid = Instant::now() + sampler.config.interval;
            sampler.next_tick = Some(grid);
            let latest = Arc::new(Latest::new(sampler.publish()));
            let weak = Arc::downgrade(&latest);
            *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(Ok(latest));
            drop(slot);
            let _ = (&tell).write_all(b"!");
            drop(tell);
            run(sampler, weak, grid);
        })
        .map_err(|e| SamplerError(format!("cannot start the sampler thread: {e}")))?;
    Ok(Starting { first, ready })
}

impl Starting {
    /// Waits for the first sample without blocking the executor, so that the
    /// caller can race it against a signal.
    pub async fn first(self) -> Result<Arc<Latest>, SamplerError> {
        let ready =
            smol::Async::new(self.ready).map_err(|e| SamplerError(format!("cannot wait for the sampler: {e}")))?;
        let _ = smol::io::AsyncReadExt::read(&mut &ready, &mut [0u8; 1]).await;
        Self::take(&self.first)
    }

    /// Blocks until the first sample is published.
    pub fn wait(mut self) -> Result<Arc<Latest>, SamplerError> {
        let _ = self.ready.read(&mut [0u8; 1]);
        Self::take(&self.first)
    }

    fn take(first: &Mutex<Option<Result<Arc<Latest>, SamplerError>>>) -> Result<Arc<Latest>, SamplerError> {
        let taken = first.lock().unwrap_or_else(PoisonError::into_inner).take();
        taken.unwrap_or_else(|| Err(SamplerError("the sampler stopped before its first sample".into())))
    }
}

/// Starts sampling and waits for the first sample (about 200 ms): `spawn` and
/// `Starting::wait` in one, for callers that need not watch for signals meanwhile.
pub fn start(config: SamplerConfig) -> Result<Arc<Latest>, SamplerError> {
    spawn(config)?.wait()
}

/// Samples on the grid that starts at `grid`, the first tick after the first sample.
fn run(mut sampler: Sampler, latest: Weak<Latest>, mut grid: Instant) {
    let interval = sampler.config.interval;
    loop {
        let due = sampler.next_tick(grid);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        sampler.next_tick = Some(grid + interval);
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

/// Microseconds since the Unix epoch; clocks set before 1970 read as the epoch.
pub fn unix_micros(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

#[cfg(all(test, procfs))]
mod tests {
    use super::*;

    // Issue 10, item 2: the sampler's own files are opened once, so a process out
    // of descriptors still reads them. Removing them after the first sample shows
    // that no later sample opens them again.
    #[test]
    fn files_read_every_sample_are_opened_once() {
        let proc = std::env::temp_dir().join(format!("fluxstat-kept-{}", std::process::id()));
        std::fs::create_dir_all(&proc).expect("temp dir");
        std::fs::write(proc.join("meminfo"), "MemTotal: 1000 kB\nMemFree: 100 kB\nMemAvailable: 500 kB\n")
            .expect("meminfo");
        std::fs::write(proc.join("loadavg"), "0.50 0.40 0.30 1/80 900\n").expect("loadavg");
        std::fs::write(proc.join("uptime"), "1234.56 100.00\n").expect("uptime");
        let roots = Roots { procfs: proc.clone(), sysfs: proc.clone(), rootfs: proc.clone() };
        let mut sampler =
            Sampler::new(SamplerConfig { roots, ..SamplerConfig::new(Duration::from_secs(1)) }).expect("sampler");
        crate::log::set_level(Level::Error);
        let first = sampler.sample();
        for f in ["meminfo", "loadavg", "uptime"] {
            std::fs::remove_file(proc.join(f)).expect("remove");
        }
        let second = sampler.sample();
        for s in [&first, &second] {
            assert_eq!(s.memory.map(|m| m.available), Some(500 * 1024));
            assert_eq!(s.load.map(|l| l.one), Some(0.5));
            assert_eq!(s.uptime, Some(1234));
            assert!(s.cpu.is_some() && s.own.rss_bytes.is_some() && s.own.cpu_time_ms.is_some());
        }
        let _ = std::fs::remove_dir_all(&proc);
    }

    // Issue 10, item 10: a family lost to fluxstat's own shortage is told apart
    // from one the machine lacks.
    #[test]
    fn a_read_that_fails_for_want_of_descriptors_degrades_its_family() {
        let empty = std::env::temp_dir().join(format!("fluxstat-degraded-{}", std::process::id()));
        std::fs::create_dir_all(&empty).expect("temp dir");
        let roots = Roots { procfs: empty.clone(), sysfs: empty.clone(), rootfs: empty.clone() };
        let mut sampler =
            Sampler::new(SamplerConfig { roots, ..SamplerConfig::new(Duration::from_secs(1)) }).expect("sampler");
        let emfile = std::io::Error::from_raw_os_error(rustix::io::Errno::MFILE.raw_os_error());
        let enoent = std::io::Error::from_raw_os_error(rustix::io::Errno::NOENT.raw_os_error());
        let misses = [
            ("memory", Miss::new(&empty.join("meminfo"), emfile)),
            ("load", Miss::new(&empty.join("loadavg"), enoent)),
        ];
        let s = Snapshot::default();
        sampler.explain(&s, &misses);
        assert_eq!(sampler.degraded(), ["memory"]);
        let p = Published::with_health(&s, 1, Instant::now(), &sampler.degraded());
        assert!(!p.health(Duration::from_secs(3)).0);

        // Sampled for real from the empty tree: everything missing is the
        // machine's, nothing is fluxstat's. (Quietly: the warnings are expected.)
        crate::log::set_level(Level::Error);
        let s = sampler.sample();
        assert!(s.memory.is_none() && s.load.is_none());
        assert_eq!(sampler.degraded(), Vec::<&str>::new());
        let _ = std::fs::remove_dir_all(&empty);
    }
}
