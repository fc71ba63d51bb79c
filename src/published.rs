//! The latest sample as ready-to-send bytes, shared from the sampler thread to
//! the responder.
//!
//! The sampler serialises each sample once into a `Published`; the responder
//! takes an `Arc` to the current one (a pointer clone under an uncontended lock)
//! and writes its bytes. Nothing here samples or serialises on request.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

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
    /// `/health` answers for a fresh and for a stale sample.
    pub health_ok: Entity,
    pub health_stale: Entity,
}

impl Published {
    pub fn new(snapshot: &Snapshot, seq: u64, taken: Instant) -> Published {
        let etag = format!("\"{:x}-{seq:x}\"", snapshot.taken_at_us);
        let (at, unavailable) = (snapshot.taken_at_us, snapshot.unavailable());
        Published {
            metrics: Entity::json(wire::encode(snapshot), Some(&etag)),
            taken,
            health_ok: Entity::json(wire::health_body(200, "OK", at, &unavailable), None),
            health_stale: Entity::json(wire::health_body(503, "Last sample is stale", at, &unavailable), None),
        }
    }
}

/// The slot holding the current `Published`.
#[derive(Debug)]
pub struct Latest(Mutex<Arc<Published>>);

impl Latest {
    pub fn new(first: Published) -> Latest {
        Latest(Mutex::new(Arc::new(first)))
    }

    /// The current sample. The lock is held for one reference-count increment.
    pub fn load(&self) -> Arc<Published> {
        Arc::clone(&self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    pub fn store(&self, next: Published) {
        let next = Arc::new(next);
        // The old value is dropped after the guard, outside the lock.
        let _old = std::mem::replace(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner), next);
    }
}
