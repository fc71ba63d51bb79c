//! The sampler: owns sysinfo, reads the machine on a timer on its own thread,
//! and publishes each sample as serialised bytes.
//!
//! It runs off the executor thread so that a slow `/proc` read or a slow
//! filesystem never stalls a response; the responder keeps serving the previous
//! sample meanwhile (and `/health` turns 503 if sampling stalls for three
//! intervals). It refreshes only what it reports: CPU times, memory, uptime and
//! the mount table; never the process table.

pub mod cpu;
pub mod disk;
pub mod memory;

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::published::{Latest, Published};
use crate::snapshot::Snapshot;

/// The shortest CPU window sysinfo measures (`sysinfo::MINIMUM_CPU_UPDATE_INTERVAL`):
/// closer readings are skipped by sysinfo and would republish stale figures.
pub const MIN_CPU_WINDOW: Duration = sysinfo::MINIMUM_CPU_UPDATE_INTERVAL;

/// What the sampler needs from the configuration.
#[derive(Debug, Clone)]
pub struct SamplerConfig {
    pub interval: Duration,
    pub disks: disk::DiskFilter,
}

/// Reads one snapshot at a time.
pub struct Sampler {
    sys: sysinfo::System,
    config: SamplerConfig,
    last_cpu_refresh: Instant,
    seq: u64,
    failed: Families,
}

/// Which families failed in the previous sample, to log once per change of state.
#[derive(Default, Clone, Copy, PartialEq, Eq)]
struct Families {
    uptime: bool,
    cpu: bool,
    memory: bool,
    disks: bool,
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
        let mut sys = sysinfo::System::new().map_err(|e| SamplerError(format!("cannot read system figures: {e:?}")))?;
        sys.refresh_cpu_usage();
        Ok(Sampler { sys, config, last_cpu_refresh: Instant::now(), seq: 0, failed: Families::default() })
    }

    /// Reads everything the document reports. The CPU figures cover the time since
    /// the previous call (or since `new`).
    pub fn sample(&mut self) -> Snapshot {
        self.last_cpu_refresh = Instant::now();
        self.sys.refresh_cpu_usage();
        self.sys.refresh_memory();
        let snapshot = Snapshot {
            uptime: sysinfo::System::uptime().ok(),
            cpu: cpu::read(&self.sys),
            memory: memory::read(&self.sys),
            disks: disk::read(&self.config.disks),
            taken_at_us: unix_micros(SystemTime::now()),
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

    fn note_failures(&mut self, s: &Snapshot) {
        let now = Families {
            uptime: s.uptime.is_none(),
            cpu: s.cpu.is_none(),
            memory: s.memory.is_none(),
            disks: s.disks.is_none(),
        };
        let changes = [
            ("uptime", self.failed.uptime, now.uptime),
            ("cpu", self.failed.cpu, now.cpu),
            ("memory", self.failed.memory, now.memory),
            ("disk", self.failed.disks, now.disks),
        ];
        for (name, before, after) in changes {
            match (before, after) {
                (false, true) => crate::warn!("{name} figures unavailable; serving null until they return"),
                (true, false) => crate::info!("{name} figures available again"),
                _ => {}
            }
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

/// Microseconds since the Unix epoch; clocks set before 1970 read as the epoch.
pub fn unix_micros(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}
