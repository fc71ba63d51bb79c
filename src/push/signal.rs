//! A one-slot wake-up between threads and tasks: `notify` sets it and wakes the
//! one task waiting, `wait` returns once it is set and clears it. Several
//! notifications before a wait count as one. Smaller than a channel, which the
//! pushers do not need: the value travels beside it (the current sample in
//! `Latest`, a backlog, a lookup's answer).

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::task::{Poll, Waker};

#[derive(Debug, Default)]
pub struct Signal {
    set: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Signal {
    pub fn notify(&self) {
        self.set.store(true, Ordering::SeqCst);
        let waker = self.waker.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Waits until notified (at once if it was since the last wait).
    pub fn wait(&self) -> impl Future<Output = ()> + '_ {
        smol::future::poll_fn(move |cx| {
            if self.set.swap(false, Ordering::SeqCst) {
                return Poll::Ready(());
            }
            *self.waker.lock().unwrap_or_else(PoisonError::into_inner) = Some(cx.waker().clone());
            // A notify between the check and the registration is not lost.
            if self.set.swap(false, Ordering::SeqCst) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn wakes_a_task_from_another_thread() {
        let s = Arc::new(Signal::default());
        let other = Arc::clone(&s);
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            other.notify();
        });
        smol::block_on(s.wait());
        s.notify();
        s.notify();
        smol::block_on(s.wait());
        let pending = smol::block_on(smol::future::or(
            async {
                s.wait().await;
                false
            },
            async {
                smol::Timer::after(Duration::from_millis(20)).await;
                true
            },
        ));
        assert!(pending, "two notifications count as one");
        let _ = t.join();
    }
}
