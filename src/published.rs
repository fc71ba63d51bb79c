//! The latest sample as ready-to-send bytes, shared from the sampler thread to
//! the responder.
//!
//! The sampler serialises each sample once into a `Published`; the responder
//! takes an `Arc` to the current one (a pointer clone under an uncontended lock)
//! and writes its bytes. Nothing here samples or serialises on request.
//!
//! `/health`, by rule (README, "What it serves"): 503 `"Last sample is stale"` when the
//! sample is older than three intervals (sampling stalled); else 503
//! `"degraded: <families>"` when families are `null` because of fluxstat itself
//! (a reader past its deadline, out of descriptors or memory: see `sample`), so a
//! supervisor can act on it; else 200 `"OK"`. `unavailable` always lists every
//! `null` family, including those the machine simply does not have (a file its
//! kernel does not provide), which alone never make `/health` fail.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

#[cfg(feature = "push")]
use crate::push::Mailbox;

use crate::http::Entity;
use crate::snapshot::Snapshot;
use crate::wire;

/// One sample, serialised, with its entity headers rendered.
#[derive(Debug)]
pub struct Published {
    /// The `/metrics` document, with a strong entity tag unique per sample:
    /// `"<µs since epoch, hex>-<sequence number, hex>"`.
    pub metrics: Entity,
    /// When the sample was taken, on the monotonic clock: `/health` compares it to now.
    pub taken: Instant,
    /// `/health`'s answer while the sample is fresh: 200 OK, or 503 degraded.
    pub health_fresh: Entity,
    /// Whether `health_fresh` is the 200.
    pub healthy: bool,
    /// `/health`'s answer once the sample is stale.
    pub health_stale: Entity,
    /// The sample itself, kept only when something pushes it (`push`): the
    /// pushers encode it into their own protocols on their own threads.
    #[cfg(feature = "push")]
    pub snapshot: Option<Arc<Snapshot>>,
}

impl Published {
    /// A sample with no family degraded.
    pub fn new(snapshot: &Snapshot, seq: u64, taken: Instant) -> Published {
        Published::with_health(snapshot, seq, taken, &[])
    }

    /// A sample whose `degraded` families are `null` because of fluxstat itself.
    pub fn with_health(snapshot: &Snapshot, seq: u64, taken: Instant, degraded: &[&str]) -> Published {
        let etag = format!("\"{:x}-{seq:x}\"", snapshot.taken_at_us);
        let (at, unavailable) = (snapshot.taken_at_us, snapshot.unavailable());
        let health_fresh = if degraded.is_empty() {
            wire::health_body(200, "OK", at, &unavailable)
        } else {
            wire::health_body(503, &format!("degraded: {}", degraded.join(", ")), at, &unavailable)
        };
        Published {
            metrics: Entity::json(wire::encode(snapshot), Some(&etag)),
            taken,
            health_fresh: Entity::json(health_fresh, None),
            healthy: degraded.is_empty(),
            health_stale: Entity::json(wire::health_body(503, "Last sample is stale", at, &unavailable), None),
            #[cfg(feature = "push")]
            snapshot: None,
        }
    }

    /// `/health`'s answer when samples older than `max_age` are stale: whether it
    /// is a 200, and the entity.
    pub fn health(&self, max_age: Duration) -> (bool, &Entity) {
        if self.taken.elapsed() > max_age {
            (false, &self.health_stale)
        } else {
            (self.healthy, &self.health_fresh)
        }
    }
}

/// The slot holding the current `Published`, and the pushers' mailboxes.
#[derive(Debug)]
pub struct Latest(Mutex<Arc<Published>>, #[cfg(feature = "push")] Mutex<Vec<Arc<Mailbox>>>);

impl Latest {
    #[cfg(feature = "push")]
    pub fn new(first: Published) -> Latest {
        Latest(Mutex::new(Arc::new(first)), Mutex::default())
    }

    #[cfg(not(feature = "push"))]
    pub fn new(first: Published) -> Latest {
        Latest(Mutex::new(Arc::new(first)))
    }

    /// The current sample. The lock is held for one reference-count increment.
    pub fn load(&self) -> Arc<Published> {
        Arc::clone(&self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    pub fn store(&self, next: Published) {
        #[cfg(feature = "push")]
        let snapshot = next.snapshot.clone();
        let next = Arc::new(next);
        // The old value is dropped after the guard, outside the lock.
        let _old = std::mem::replace(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner), next);
        // Hand the sample to the pushers (none unless configured); never waits on them.
        #[cfg(feature = "push")]
        if let Some(s) = snapshot {
            for mailbox in self.1.lock().unwrap_or_else(PoisonError::into_inner).iter() {
                mailbox.offer(&s);
            }
        }
    }

    /// Sends the current sample and each one stored after it to `mailbox` (a
    /// pusher's). The responder never watches: it loads on request.
    #[cfg(feature = "push")]
    pub fn watch(&self, mailbox: Arc<Mailbox>) {
        // Under the list's lock, so that a sample stored meanwhile is not missed
        // (offered twice, the mailbox takes it once).
        let mut mailboxes = self.1.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(s) = &self.load().snapshot {
            mailbox.offer(s);
        }
        mailboxes.push(mailbox);
    }
}
