//! A deadline worker: runs one job at a time on a helper thread, so that the
//! sampler can stop waiting for a read that blocks (a wedged I²C hwmon driver
//! holds a `read` for seconds; a FIFO holds it for ever).
//!
//! The sampler hands a job over at the start of a sample, does its own reads
//! meanwhile, and then waits for the result until a deadline. A job that misses
//! it keeps running; until it returns, `submit` refuses new work (`Stuck`), so
//! the family is skipped (`null`) each sample and no work queues up behind it.
//! When the job finally returns, its late result is dropped and the next sample
//! runs normally again. One thread per worker, started with the first job; it
//! exits once its worker is dropped (after its current job, if one is stuck).
//!
//! Jobs are closures returning `R`, so another reader with its own deadline
//! (statvfs in `disk.rs`, which today has its own worker) can use the same type:
//! for a per-mount deadline it would record its progress in the job, and call
//! `abandon` to leave a stuck thread behind and continue on a fresh one.
//!
//! The exchange is one mutex and two condition variables (channels cost several
//! KiB of code per message type), and the sampler is woken only when it waits:
//! a job that finishes before the sampler asks costs the worker's one wake-up.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

type Job<R> = Box<dyn FnOnce() -> R + Send>;

/// Runs jobs of result type `R` on one helper thread.
pub struct Worker<R> {
    name: &'static str,
    shared: Option<Arc<Shared<R>>>,
}

struct Shared<R> {
    state: Mutex<State<R>>,
    job_ready: Condvar,
    done: Condvar,
}

struct State<R> {
    job: Option<Job<R>>,
    /// A job was handed over and has not returned yet.
    busy: bool,
    result: Option<R>,
    /// The owner waits on `done`; the worker notifies only then.
    waiting: bool,
    /// The owner is gone: the thread exits after its current job.
    closed: bool,
}

/// Why a job was not taken.
#[derive(Debug)]
pub enum Refused {
    /// The previous job has not returned yet (it missed its deadline).
    Stuck,
    /// The helper thread could not be started.
    Spawn(std::io::Error),
}

impl<R: Send + 'static> Worker<R> {
    /// A worker named `name` (the thread's name); no thread runs until the first job.
    pub fn new(name: &'static str) -> Worker<R> {
        Worker { name, shared: None }
    }

    /// Hands `job` to the helper thread. Refused while a previous job is still
    /// running, so a stuck job never has work queued behind it.
    pub fn submit(&mut self, job: impl FnOnce() -> R + Send + 'static) -> Result<(), Refused> {
        let shared = match &self.shared {
            Some(s) => s,
            None => self.shared.insert(Self::spawn(self.name).map_err(Refused::Spawn)?),
        };
        let mut st = shared.lock();
        if st.busy {
            return Err(Refused::Stuck);
        }
        // A result nobody collected (the job that came back late) is stale.
        st.result = None;
        st.job = Some(Box::new(job));
        st.busy = true;
        drop(st);
        shared.job_ready.notify_one();
        Ok(())
    }

    /// The result of the job last submitted, waiting for it until `deadline`;
    /// `None` if it has not returned by then (it goes on running).
    pub fn wait(&self, deadline: Instant) -> Option<R> {
        let shared = self.shared.as_ref()?;
        let mut st = shared.lock();
        loop {
            if let Some(r) = st.result.take() {
                return Some(r);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !st.busy {
                return None;
            }
            st.waiting = true;
            st = shared.done.wait_timeout(st, left).unwrap_or_else(PoisonError::into_inner).0;
            st.waiting = false;
        }
    }

    /// Whether a job is still running (handed over and not returned).
    pub fn busy(&self) -> bool {
        self.shared.as_ref().is_some_and(|s| s.lock().busy)
    }

    /// Leaves the current thread (and any job stuck on it) behind: the next
    /// `submit` starts a fresh thread. The old one exits when its job returns.
    pub fn abandon(&mut self) {
        if let Some(shared) = self.shared.take() {
            shared.close();
        }
    }

    fn spawn(name: &'static str) -> std::io::Result<Arc<Shared<R>>> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State { job: None, busy: false, result: None, waiting: false, closed: false }),
            job_ready: Condvar::new(),
            done: Condvar::new(),
        });
        let theirs = Arc::clone(&shared);
        std::thread::Builder::new().name(name.into()).spawn(move || theirs.serve())?;
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
        self.job_ready.notify_one();
    }

    /// The helper thread: one job at a time until closed.
    fn serve(&self) {
        let mut st = self.lock();
        loop {
            if st.closed {
                return;
            }
            let Some(job) = st.job.take() else {
                st = self.job_ready.wait(st).unwrap_or_else(PoisonError::into_inner);
                continue;
            };
            drop(st);
            let r = job();
            st = self.lock();
            st.busy = false;
            st.result = Some(r);
            if st.waiting {
                self.done.notify_one();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    #[test]
    fn a_quick_job_answers_within_the_deadline() {
        let mut w = Worker::new("test-worker");
        for i in 0..3u32 {
            w.submit(move || i * 2).expect("taken");
            assert_eq!(w.wait(Instant::now() + Duration::from_secs(10)), Some(i * 2));
        }
    }

    #[test]
    fn a_stuck_job_is_given_up_then_refuses_work_until_it_returns() {
        static RELEASE: AtomicBool = AtomicBool::new(false);
        let mut w = Worker::new("test-worker");
        w.submit(|| {
            while !RELEASE.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(1));
            }
            "late"
        })
        .expect("taken");
        let started = Instant::now();
        assert_eq!(w.wait(started + Duration::from_millis(50)), None);
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(50) && waited < Duration::from_secs(5), "{waited:?}");

        // Still stuck: no new work is queued, and asking again does not wait.
        assert!(matches!(w.submit(|| "queued"), Err(Refused::Stuck)));
        assert!(w.busy());

        RELEASE.store(true, Ordering::Release);
        let deadline = Instant::now() + Duration::from_secs(10);
        while w.busy() {
            assert!(Instant::now() < deadline, "the job never returned");
            std::thread::sleep(Duration::from_millis(1));
        }
        // Recovered: the late result is dropped, the next job's is returned.
        w.submit(|| "fresh").expect("taken again");
        assert_eq!(w.wait(Instant::now() + Duration::from_secs(10)), Some("fresh"));
    }

    #[test]
    fn abandon_continues_on_a_fresh_thread() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let mut w = Worker::new("test-worker");
        w.submit(move || {
            let _ = rx.recv();
            0
        })
        .expect("taken");
        assert_eq!(w.wait(Instant::now() + Duration::from_millis(20)), None);
        w.abandon();
        w.submit(|| 7).expect("a fresh thread takes it");
        assert_eq!(w.wait(Instant::now() + Duration::from_secs(10)), Some(7));
        drop(tx); // lets the abandoned thread's job return and the thread exit
    }
}
