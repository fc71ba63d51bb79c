//! Pushing samples to other systems: InfluxDB (line protocol over HTTP) and MQTT
//! (with Home Assistant discovery). A pusher is one more consumer of each
//! published sample: the sampler keeps the `Snapshot` in `Published` when a
//! pusher is configured and hands it to each pusher's `Mailbox` (a lock, a
//! pointer clone and a futex wake-up: it never waits on a pusher). Each pusher
//! is a thread of its own (`push-influx`, `push-mqtt`, small stacks) doing
//! plain blocking I/O with deadlines: it encodes, looks names up, connects,
//! writes and reads there, so it never delays a sample or a response, and it
//! sleeps on its mailbox between samples. A name lookup that hangs stalls only
//! that pusher (the C resolver gives up by itself; samples meanwhile wait in
//! the mailbox, bounded). The threads are never joined: the process exits
//! without waiting for them, and the MQTT connection is then closed without
//! DISCONNECT, so the broker publishes the will. Their counters (`Counters`)
//! are read by the sampler into the document's `fluxstat.push` section.

pub mod backlog;
pub mod ha;
pub mod influx;
pub mod line;
pub mod mqtt;
pub mod net;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::published::Latest;
use crate::snapshot::{Pushed, Snapshot};

/// Each pusher thread's stack. Measured (BENCHMARKS.md): a pusher touches at
/// most 24 KiB of it, a failed DNS lookup included, on x86_64 (glibc), ARMv7
/// and MIPS (musl), and runs with 24 KiB; 64 KiB leaves room for heavier
/// resolvers (glibc's NSS modules). Untouched pages cost no memory.
pub const STACK: usize = 64 * 1024;

/// What to push where, from the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PushConfig {
    pub influx: Option<influx::Target>,
    pub mqtt: Option<mqtt::Target>,
    /// Push one sample in this interval; `None` is every sample.
    pub every: Option<Duration>,
    /// Samples the InfluxDB backlog keeps; `None` is a minute's worth.
    pub backlog: Option<usize>,
}

impl PushConfig {
    pub fn is_on(&self) -> bool {
        self.influx.is_some() || self.mqtt.is_some()
    }
}

/// One pusher's counters, shared with the sampler. Under a lock rather than in
/// 64-bit atomics, which 32-bit MIPS lacks; both sides take it once per sample.
#[derive(Debug, Default)]
pub struct Channel {
    on: AtomicBool,
    counts: Mutex<Pushed>,
}

impl Channel {
    pub fn read(&self) -> Option<Pushed> {
        self.on.load(Ordering::Relaxed).then(|| *self.counts())
    }
    fn counts(&self) -> MutexGuard<'_, Pushed> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }
    fn add_sent(&self, n: u64) {
        self.counts().sent += n;
    }
    fn add_failed(&self) {
        self.counts().failed += 1;
    }
    fn add_dropped(&self, n: u64) {
        self.counts().dropped += n;
    }
    fn set_queued(&self, n: usize) {
        self.counts().queued = n as u64;
    }
}

/// Both pushers' counters; `on` once configured.
#[derive(Debug, Default)]
pub struct Counters {
    pub influx: Arc<Channel>,
    pub mqtt: Arc<Channel>,
}

impl Counters {
    /// Counters for `config`: a configured pusher reads as zeros from the first
    /// sample, one that is off as `null`.
    pub fn for_config(config: &PushConfig) -> Counters {
        let c = Counters::default();
        c.influx.on.store(config.influx.is_some(), Ordering::Relaxed);
        c.mqtt.on.store(config.mqtt.is_some(), Ordering::Relaxed);
        c
    }

    /// Whether any pusher is on: the sampler then keeps each `Snapshot`.
    pub fn any(&self) -> bool {
        self.influx.on.load(Ordering::Relaxed) || self.mqtt.on.load(Ordering::Relaxed)
    }
}

/// A pusher's inbox of samples, filled by the sampler thread (`Latest::store`)
/// and emptied by the pusher's thread. It takes the current sample, then each
/// new one at least `every` (less half a sample interval, for jitter) after the
/// last taken; full, it drops the oldest and counts it as dropped. MQTT's holds
/// one sample; InfluxDB's as many as its backlog, though it only fills while its
/// thread is blocked (a POST or a name lookup: seconds), and is emptied into the
/// backlog, encoded, as soon as the thread is back.
#[derive(Debug)]
pub struct Mailbox {
    mail: Mutex<Mail>,
    arrived: Condvar,
    counters: Arc<Channel>,
}

#[derive(Debug)]
struct Mail {
    /// Oldest first; full, the front goes (without moving the rest: a pusher held
    /// by a slow database can let it fill to the backlog's size).
    queue: VecDeque<Arc<Snapshot>>,
    capacity: usize,
    every_us: i64,
    last_us: Option<i64>,
}

impl Mailbox {
    pub fn new(capacity: usize, every: Duration, interval: Duration, counters: Arc<Channel>) -> Mailbox {
        let every_us = i64::try_from(every.saturating_sub(interval / 2).as_micros()).unwrap_or(i64::MAX);
        let mail = Mail { queue: VecDeque::new(), capacity: capacity.max(1), every_us, last_us: None };
        Mailbox { mail: Mutex::new(mail), arrived: Condvar::new(), counters }
    }

    fn lock(&self) -> MutexGuard<'_, Mail> {
        self.mail.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Offers a sample (on the sampler thread): never waits on the pusher.
    pub fn offer(&self, s: &Arc<Snapshot>) {
        let mut m = self.lock();
        // Too soon after the last one taken (or the same one again). A sample from
        // before it means the clock was stepped back: taken, so pushing goes on.
        let since = m.last_us.map(|last| s.taken_at_us.saturating_sub(last));
        if since.is_some_and(|d| (0..m.every_us).contains(&d)) {
            return;
        }
        m.last_us = Some(s.taken_at_us);
        if m.queue.len() >= m.capacity {
            m.queue.pop_front();
            self.counters.add_dropped(1);
        }
        m.queue.push_back(Arc::clone(s));
        drop(m);
        self.arrived.notify_one();
    }

    /// The samples that came, oldest first: at once if there are any, else once
    /// one comes or `until` passes (empty then); `None` waits for a sample.
    pub fn wait(&self, until: Option<Instant>) -> Vec<Arc<Snapshot>> {
        let mut m = self.lock();
        while m.queue.is_empty() {
            m = match until {
                None => self.arrived.wait(m).unwrap_or_else(PoisonError::into_inner),
                Some(t) => {
                    let left = t.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    self.arrived.wait_timeout(m, left).unwrap_or_else(PoisonError::into_inner).0
                }
            };
        }
        m.queue.drain(..).collect()
    }
}

/// A finite float as the JSON document writes it, with the formatter `wire`
/// already links (core's `{}` for floats would add some 12 KiB to the binary).
pub fn float(x: f64) -> String {
    miniserde::json::to_string(&x)
}

/// Starts a thread for each configured pusher, fed from `latest`; they run
/// until the process exits.
pub fn start(config: PushConfig, latest: &Latest, counters: &Counters, interval: Duration) -> Result<(), String> {
    let every = config.every.unwrap_or(interval).max(interval);
    let capacity = config.backlog.unwrap_or_else(|| {
        usize::try_from(Duration::from_secs(60).as_millis() / every.as_millis().max(1)).unwrap_or(1).max(1)
    });
    if let Some(target) = config.influx {
        let channel = Arc::clone(&counters.influx);
        let mailbox = Arc::new(Mailbox::new(capacity, every, interval, Arc::clone(&channel)));
        latest.watch(Arc::clone(&mailbox));
        spawn("push-influx", move || influx::run(&target, &mailbox, capacity, &channel))?;
    }
    if let Some(target) = config.mqtt {
        let channel = Arc::clone(&counters.mqtt);
        // Only the newest sample waits while the broker is away.
        let mailbox = Arc::new(Mailbox::new(1, every, interval, Arc::clone(&channel)));
        latest.watch(Arc::clone(&mailbox));
        spawn("push-mqtt", move || mqtt::run(&target, &mailbox, every, &channel))?;
    }
    Ok(())
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<(), String> {
    std::thread::Builder::new()
        .name(name.into())
        .stack_size(STACK)
        .spawn(f)
        .map(drop)
        .map_err(|e| format!("cannot start the {name} thread: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at_us: i64) -> Arc<Snapshot> {
        Arc::new(Snapshot { taken_at_us: at_us, ..Snapshot::default() })
    }

    #[test]
    fn a_mailbox_wakes_its_thread_and_keeps_the_newest() {
        let channel = Arc::new(Channel::default());
        let second = Duration::from_secs(1);
        let m = Arc::new(Mailbox::new(2, second, second, Arc::clone(&channel)));
        let theirs = Arc::clone(&m);
        // Bounded: a lost wake-up fails the test (empty after 10 s) instead of hanging it.
        let t = std::thread::spawn(move || theirs.wait(Some(Instant::now() + Duration::from_secs(10))));
        // Most likely waiting by now, so the offer goes through the wake-up; if not,
        // the sample is there when it looks, and the result is the same.
        std::thread::sleep(Duration::from_millis(20));
        m.offer(&sample(1_000_000));
        let got = t.join().expect("the waiting thread");
        assert_eq!(got.iter().map(|s| s.taken_at_us).collect::<Vec<_>>(), [1_000_000], "woken with the sample");
        // Nothing came: the wait ends at the deadline, empty.
        let t0 = Instant::now();
        assert!(m.wait(Some(t0 + Duration::from_millis(30))).is_empty());
        assert!(t0.elapsed() >= Duration::from_millis(30));
        // Full: the oldest goes and counts as dropped.
        for i in 2..=4 {
            m.offer(&sample(i * 1_000_000));
        }
        let got: Vec<i64> = m.wait(None).iter().map(|s| s.taken_at_us).collect();
        assert_eq!(got, [3_000_000, 4_000_000]);
        assert_eq!(channel.counts().dropped, 1);
    }

    /// What a pusher does (a name lookup, both encoders) fits in its stack; an
    /// overflow would abort the test binary.
    #[test]
    fn the_thread_stack_is_enough() {
        let work = || {
            let url = net::Url::parse("http://localhost:1/write?db=x", "http", 80).expect("url");
            let _ = net::resolve(&url);
            let s = Snapshot::default();
            let mut text = String::new();
            line::encode(&s, &mut text);
            let configs: usize = ha::entities(&s).iter().map(|e| ha::config(&s, e, "homeassistant", 30).1.len()).sum();
            configs + ha::states(&s).len() + text.len()
        };
        let t = std::thread::Builder::new().stack_size(STACK).spawn(work).expect("spawn");
        assert!(t.join().expect("the pusher's work") > 0);
    }

    #[test]
    fn a_mailbox_takes_one_sample_per_push_interval() {
        let channel = Arc::new(Channel::default());
        let m = Mailbox::new(10, Duration::from_secs(5), Duration::from_secs(1), channel);
        for i in 0..12 {
            m.offer(&sample(i * 1_000_000));
        }
        let got: Vec<i64> = m.wait(None).iter().map(|s| s.taken_at_us / 1_000_000).collect();
        assert_eq!(got, [0, 5, 10]);
        // The same sample again is not taken twice.
        m.offer(&sample(10_000_000));
        assert!(m.wait(Some(Instant::now())).is_empty());
        // The clock stepped back an hour (NTP on a router without a clock): pushing
        // goes on from there, it does not wait an hour for the clock to catch up.
        for i in 0..6 {
            m.offer(&sample(11_000_000 - 3_600_000_000 + i * 1_000_000));
        }
        let got: Vec<i64> =
            m.wait(Some(Instant::now())).iter().map(|s| (s.taken_at_us + 3_600_000_000) / 1_000_000).collect();
        assert_eq!(got, [11, 16]);
    }
}
