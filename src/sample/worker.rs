//! A deadline worker: runs a reader on a helper thread, once per sample, so that
//! the sampler can stop waiting for a read that blocks (a wedged I²C hwmon driver
//! holds a `read` for seconds; a FIFO holds it for ever).
//!
//! **Schedule.** The helper keeps its own timer on the sampler's grid: it runs the
//! job `LEAD` before each tick, so that when the sampler collects the result it is
//! usually there already, and neither thread wakes the other: each wakes once per
//! interval, on its own timer. The sampler tells the helper when its next tick is
//! (`collect`'s `next`); the helper also advances its own due time by one interval
//! after each run, so in steady state the sampler's word changes nothing and costs
//! no wake-up. When no result is there (the first sample, a job slower than
//! `LEAD`, a tick that moved), the sampler waits for it until its deadline, asking
//! for a run at once if none is under way.
//!
//! **Deadline.** A job that misses the deadline keeps running on its thread; the
//! family is `null` for that sample (`Refused::Late`). While it is still running
//! at the next sample, it is *stuck*: `collect` answers `Refused::Stuck` at once,
//! without waiting and without queueing more work. When the job finally returns,
//! its result is too old and is dropped; the next run starts at once, and the
//! sample after has the family again.
//!
//! **Disk.** statvfs in `disk.rs` keeps its own worker: its deadline is per
//! mount, and a mount that hangs is named, its neighbours' answers kept and the
//! mounts after it asked by a fresh thread in the same sample, which this
//! worker's all-or-nothing result cannot express without a second protocol
//! (`disk::DiskReader` says more). Its hand-off costs one wake of each thread
//! per sample.
//!
//! The exchange is one mutex and two condition variables (channels cost several
//! KiB of code per message type).

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// How long before the sampler's tick the job runs: enough for a thermal zone or
/// a few hwmon inputs; a slower job still counts, the sampler then waits for it.
pub const LEAD: Duration = Duration::from_millis(30);

type Job<R> = Arc<dyn Fn() -> R + Send + Sync>;

/// Runs one job, once per sample, on a helper thread.
pub struct Worker<R> {
    name: &'static str,
    interval: Duration,
    job: Job<R>,
    shared: Option<Arc<Shared<R>>>,
    /// When the last collection ended: a run started before and still going is
    /// stuck, and its result, when it comes, is stale.
    last_collect: Option<Instant>,
}

struct Shared<R> {
    state: Mutex<State<R>>,
    /// Wakes the helper: a new due time, or closing.
    wake: Condvar,
    /// Wakes the sampler: a result, while it waits.
    done: Condvar,
}

struct State<R> {
    /// When the next run starts; `None`: only when asked.
    due: Option<Instant>,
    /// When the run under way started.
    running_since: Option<Instant>,
    /// The last run's result and when that run started.
    result: Option<(Instant, R)>,
    /// The sampler waits on `done`: the helper notifies only then.
    waiting: bool,
    /// The owner is gone: the thread exits after its current run.
    closed: bool,
}

/// Why `collect` has no result.
#[derive(Debug)]
pub enum Refused {
    /// The job did not return by the deadline (it goes on running).
    Late,
    /// The job of an earlier sample has not returned yet; nothing was asked.
    Stuck,
    /// The helper thread could not be started.
    Spawn(std::io::Error),
}

impl<R: Send + 'static> Worker<R> {
    /// A worker running `job` about once per `interval`, on a thread named
    /// `name`; the thread starts at the first `collect`.
    pub fn new(name: &'static str, interval: Duration, job: impl Fn() -> R + Send + Sync + 'static) -> Worker<R> {
        Worker { name, interval, job: Arc::new(job), shared: None, last_collect: None }
    }

    /// The result of a run started since the last collection, waiting for it until
    /// `deadline`. `next` is when the sampler's next tick is (`None` when it is
    /// not on a timer, as in tests): the next run starts `LEAD` before it.
    pub fn collect(&mut self, deadline: Instant, next: Option<Instant>) -> Result<R, Refused> {
        let fresh_after = self.last_collect;
        let shared = match &self.shared {
            Some(s) => s,
            None => self.shared.insert(Self::spawn(self.name, self.interval, &self.job).map_err(Refused::Spawn)?),
        };
        let mut st = shared.lock();
        let mut asked = false;
        let outcome = loop {
            if let Some((started, r)) = st.result.take() {
                if fresh_after.is_none_or(|t| started >= t) {
                    break Ok(r);
                }
                continue; // the late result of a stuck run: too old
            }
            match st.running_since {
                Some(since) if fresh_after.is_some_and(|t| since < t) => break Err(Refused::Stuck),
                Some(_) => {}
                None if !asked => {
                    st.due = Some(Instant::now());
                    shared.wake.notify_one();
                    asked = true;
                }
                None => {}
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break Err(Refused::Late);
            }
            st.waiting = true;
            st = shared.done.wait_timeout(st, left).unwrap_or_else(PoisonError::into_inner).0;
            st.waiting = false;
        };
        let due = next.map(|t| t.checked_sub(LEAD).unwrap_or(t));
        if st.due != due {
            st.due = due;
            shared.wake.notify_one();
        }
        drop(st);
        self.last_collect = Some(Instant::now());
        outcome
    }

    /// Stops the timer: the next run starts when `collect` asks for it.
    pub fn pause(&self) {
        if let Some(shared) = &self.shared {
            shared.lock().due = None;
        }
    }

    /// Leaves the current thread (and a job stuck on it) behind: the next
    /// `collect` starts a fresh one. The old thread exits when its job returns.
    pub fn abandon(&mut self) {
        if let Some(shared) = self.shared.take() {
            shared.close();
        }
    }

    fn spawn(name: &'static str, interval: Duration, job: &Job<R>) -> std::io::Result<Arc<Shared<R>>> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State { due: None, running_since: None, result: None, waiting: false, closed: false }),
            wake: Condvar::new(),
            done: Condvar::new(),
        });
        let (theirs, job) = (Arc::clone(&shared), Arc::clone(job));
        std::thread::Builder::new().name(name.into()).spawn(move || theirs.serve(interval, &*job))?;
        Ok(shared)
    }
}

impl<R> Drop for Worker<R> {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            shared.close();
        }
    }
}

impl<R> Shared<R> {
    fn lock(&self) -> MutexGuard<'_, State<R>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_one();
    }

    /// The helper thread: runs the job when due, until closed.
    fn serve(&self, interval: Duration, job: &(dyn Fn() -> R + Send + Sync)) {
        let mut st = self.lock();
        loop {
            if st.closed {
                return;
            }
            let now = Instant::now();
            match st.due {
                Some(due) if due <= now => {
                    // The next run, on the same grid, unless the sampler says otherwise.
                    let next = due + interval;
                    st.due = Some(if next > now { next } else { now + interval });
                    st.running_since = Some(now);
                    drop(st);
                    let r = job();
                    st = self.lock();
                    st.running_since = None;
                    st.result = Some((now, r));
                    if st.waiting {
                        self.done.notify_one();
                    }
                }
                Some(due) => st = self.wake.wait_timeout(st, due - now).unwrap_or_else(PoisonError::into_inner).0,
                None => st = self.wake.wait(st).unwrap_or_else(PoisonError::into_inner),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

    const LONG: Duration = Duration::from_secs(10);

    #[test]
    fn a_quick_job_answers_when_asked() {
        let runs = Arc::new(AtomicU32::new(0));
        let counter = Arc::clone(&runs);
        let mut w = Worker::new("test-worker", LONG, move || counter.fetch_add(1, Ordering::Relaxed));
        for i in 0..3 {
            assert_eq!(w.collect(Instant::now() + LONG, None).ok(), Some(i));
        }
    }

    #[test]
    fn on_a_timer_the_result_is_ready_before_the_tick() {
        let interval = Duration::from_millis(300);
        let mut w = Worker::new("test-worker", interval, Instant::now);
        let mut tick = Instant::now();
        let _ = w.collect(tick + LONG, Some(tick + interval)).expect("first run, asked for");
        for _ in 0..3 {
            tick += interval;
            // The sampler comes late (a loaded machine may not schedule the helper
            // on time either): the helper ran on its own, not when asked.
            std::thread::sleep((tick + Duration::from_millis(200)).saturating_duration_since(Instant::now()));
            let asked = Instant::now();
            let ran = w.collect(asked + LONG, Some(tick + interval)).expect("a result");
            assert!(ran <= asked, "ran {:?} after the sampler asked", ran - asked);
            assert!(ran + LEAD >= tick, "ran {:?} before its time", tick - LEAD - ran);
        }
    }

    #[test]
    fn a_stuck_job_is_given_up_then_skipped_until_it_returns() {
        static BLOCK: AtomicBool = AtomicBool::new(true);
        let mut w = Worker::new("test-worker", LONG, || {
            while BLOCK.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(1));
            }
            "fresh"
        });
        let started = Instant::now();
        assert!(matches!(w.collect(started + Duration::from_millis(50), None), Err(Refused::Late)));
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(50) && waited < Duration::from_secs(5), "{waited:?}");

        // Still stuck: the next sample does not wait and queues nothing.
        let asked = Instant::now();
        assert!(matches!(w.collect(asked + LONG, None), Err(Refused::Stuck)));
        assert!(asked.elapsed() < Duration::from_secs(1), "it waited for a stuck job");

        BLOCK.store(false, Ordering::Release);
        // The late result is dropped; a fresh run answers.
        let deadline = Instant::now() + LONG;
        let got = loop {
            match w.collect(deadline, None) {
                Ok(r) => break r,
                Err(Refused::Stuck) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
                Err(e) => panic!("{e:?}"),
            }
        };
        assert_eq!(got, "fresh");
    }

    #[test]
    fn abandon_continues_on_a_fresh_thread() {
        static BLOCK: AtomicBool = AtomicBool::new(true);
        let first = Arc::new(AtomicBool::new(true));
        let blocked = Arc::clone(&first);
        let mut w = Worker::new("test-worker", LONG, move || {
            if first.swap(false, Ordering::AcqRel) {
                while BLOCK.load(Ordering::Acquire) {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            7
        });
        assert!(matches!(w.collect(Instant::now() + Duration::from_millis(20), None), Err(Refused::Late)));
        // The first run must be the one that blocks: on a loaded machine (qemu) its
        // thread may not have started within those 20 ms, and then the fresh thread
        // below would take the blocking first run itself.
        let deadline = Instant::now() + LONG;
        while blocked.load(Ordering::Acquire) {
            assert!(Instant::now() < deadline, "the first run never started");
            std::thread::sleep(Duration::from_millis(1));
        }
        w.abandon();
        assert_eq!(w.collect(Instant::now() + LONG, None).ok(), Some(7));
        BLOCK.store(false, Ordering::Release); // lets the abandoned thread exit
    }
}
