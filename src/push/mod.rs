//! Pushing samples to other systems: InfluxDB (line protocol over HTTP) and MQTT
//! (with Home Assistant discovery). A pusher is one more consumer of each
//! published sample: the sampler keeps the `Snapshot` in `Published` when a
//! pusher is configured and wakes the pushers through `Latest::watch`; they run
//! as one task on the responder's executor, encode on it, and wait only on the
//! reactor, so they never delay a sample or a response, and cost nothing between
//! samples. Their counters (`Counters`) are read by the sampler into the
//! document's `fluxstat.push` section.

pub mod backlog;
pub mod ha;
pub mod influx;
pub mod line;
pub mod mqtt;
pub mod net;
pub mod signal;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use crate::published::Latest;
use crate::snapshot::{Pushed, Snapshot};

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

/// One pusher's counters, shared with the sampler.
#[derive(Debug, Default)]
pub struct Channel {
    on: AtomicBool,
    sent: Count,
    failed: Count,
    dropped: Count,
    queued: Count,
}

impl Channel {
    pub fn read(&self) -> Option<Pushed> {
        self.on.load(Ordering::Relaxed).then(|| Pushed {
            sent: self.sent.get(),
            failed: self.failed.get(),
            dropped: self.dropped.get(),
            queued: self.queued.get(),
        })
    }
    fn add_sent(&self, n: u64) {
        self.sent.add(n);
    }
    fn add_failed(&self) {
        self.failed.add(1);
    }
    fn add_dropped(&self, n: u64) {
        self.dropped.add(n);
    }
    fn set_queued(&self, n: usize) {
        self.queued.set(n);
    }
}

/// One counter: 64 bits where the target has 64-bit atomics, the pointer width on
/// 32-bit MIPS, which has none (as `server::RequestCounter`).
#[derive(Debug, Default)]
struct Count(crate::server::RequestCounter);

impl Count {
    fn get(&self) -> u64 {
        // usize is at most 64 bits on every target Rust supports.
        #[allow(clippy::useless_conversion)]
        u64::try_from(self.0.load(Ordering::Relaxed)).unwrap_or(u64::MAX)
    }
    fn add(&self, n: u64) {
        // Lossless where the counter is 64 bits; a batch never nears 2^32 elsewhere.
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        self.0.fetch_add(n as _, Ordering::Relaxed);
    }
    fn set(&self, n: usize) {
        self.0.store(n as _, Ordering::Relaxed);
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

/// The samples a pusher takes: the current one, then each new one at least
/// `every` (less half a sample interval, for jitter) after the last taken.
pub struct Samples {
    latest: Arc<Latest>,
    wake: Arc<signal::Signal>,
    every_us: i64,
    last_us: Option<i64>,
}

impl Samples {
    pub fn new(latest: Arc<Latest>, every: Duration, interval: Duration) -> Samples {
        let wake = latest.watch();
        let every_us = i64::try_from(every.saturating_sub(interval / 2).as_micros()).unwrap_or(i64::MAX);
        Samples { latest, wake, every_us, last_us: None }
    }

    /// The next sample to push (`None` only without a sampler keeping snapshots).
    pub async fn next(&mut self) -> Option<Arc<Snapshot>> {
        loop {
            if let Some(s) = self.latest.load().snapshot.clone() {
                let due = self.last_us.is_none_or(|last| s.taken_at_us.saturating_sub(last) >= self.every_us);
                if due {
                    self.last_us = Some(s.taken_at_us);
                    return Some(s);
                }
            }
            self.wake.wait().await;
        }
    }
}

/// A finite float as the JSON document writes it, with the formatter `wire`
/// already links (core's `{}` for floats would add some 12 KiB to the binary).
pub fn float(x: f64) -> String {
    miniserde::json::to_string(&x)
}

/// Runs the configured pushers until dropped (never completes by itself).
pub async fn run(config: PushConfig, latest: Arc<Latest>, counters: Arc<Counters>, interval: Duration) {
    let every = config.every.unwrap_or(interval).max(interval);
    let capacity = config.backlog.unwrap_or_else(|| {
        usize::try_from(Duration::from_secs(60).as_millis() / every.as_millis().max(1)).unwrap_or(1).max(1)
    });
    let influx = async {
        match config.influx {
            Some(t) => {
                let samples = Samples::new(Arc::clone(&latest), every, interval);
                influx::run(t, samples, capacity, Arc::clone(&counters.influx)).await;
            }
            None => smol::future::pending().await,
        }
    };
    let mqtt = async {
        match config.mqtt {
            Some(t) => {
                let samples = Samples::new(Arc::clone(&latest), every, interval);
                mqtt::run(t, samples, every, Arc::clone(&counters.mqtt)).await;
            }
            None => smol::future::pending().await,
        }
    };
    smol::future::or(influx, mqtt).await;
    smol::future::pending::<()>().await;
}

/// Runs `pushing` beside `shutdown` in one task until `shutdown` completes, and
/// polls `shutdown` only when its own waker fired: a task is polled whole on
/// every wake-up, and polling the signal stream costs a system call, which the
/// pushers' several wake-ups per sample would otherwise pay each time.
pub async fn beside(shutdown: impl Future<Output = ()> + 'static, pushing: impl Future<Output = ()>) {
    let flag = Arc::new(WakeFlag::default());
    let mut shutdown = Box::pin(shutdown);
    let mut first = true;
    let watched = smol::future::poll_fn(move |cx| {
        *flag.waker.lock().unwrap_or_else(PoisonError::into_inner) = Some(cx.waker().clone());
        if !flag.woken.swap(false, Ordering::SeqCst) && !first {
            return Poll::Pending;
        }
        first = false;
        let waker = Waker::from(Arc::clone(&flag));
        shutdown.as_mut().poll(&mut Context::from_waker(&waker))
    });
    smol::future::or(watched, pushing).await;
}

/// Remembers that a future's waker fired, and passes the wake-up on.
#[derive(Default)]
struct WakeFlag {
    woken: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Wake for WakeFlag {
    fn wake(self: Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        if let Some(w) = self.waker.lock().unwrap_or_else(PoisonError::into_inner).as_ref() {
            w.wake_by_ref();
        }
    }
}
