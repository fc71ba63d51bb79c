//! The descriptor budget: how many connections fit `RLIMIT_NOFILE`.
//!
//! Every connection is a descriptor, and so is every refused connection that is
//! still being answered (403) and every displaced one until it is closed. The rest of the process needs descriptors
//! too: stdio, the listeners, the reactor (epoll, eventfd, timerfd), the signal
//! pipe, and the sampler's `/proc` and `/sys` files. So at start-up fluxstat
//! raises its soft limit as far as the hard limit allows, counts what it already
//! holds, keeps `SAMPLER_FDS` free for the sampler, and caps connections to what
//! remains: connections plus answers to refused ones never take the sampler's
//! descriptors, and displacement keeps working at the cap.

use std::io;

/// Descriptors kept free for the sampler (files it keeps open and those it opens
/// for a moment: `/proc/*`, hwmon and thermal files, directory listings) and the
/// statvfs worker.
pub const SAMPLER_FDS: usize = 32;

/// How many sockets may be held at once beyond the cap, by answers to refused
/// connections (403 outside the allowlist) and by displaced connections that
/// are closing: an eighth of the cap, between 1 and 64.
pub fn reject_budget(max_connections: usize) -> usize {
    (max_connections / 8).clamp(1, 64)
}

/// Descriptors the responder may hold for sockets with `max_connections`: the
/// connections plus `reject_budget`.
pub fn socket_budget(max_connections: usize) -> usize {
    max_connections.saturating_add(reject_budget(max_connections))
}

/// The largest connection cap, at most `asked`, whose `socket_budget` fits in
/// `free` descriptors; `None` if not even one connection fits.
pub fn fit(asked: usize, free: usize) -> Option<usize> {
    // At most 64 steps: the reject budget is at most 64.
    let mut cap = asked.min(free);
    while cap > 0 && socket_budget(cap) > free {
        cap -= 1;
    }
    (cap >= 1).then_some(cap)
}

/// Raises the soft `RLIMIT_NOFILE` towards `wanted` (never beyond the hard limit,
/// never lowers it) and returns the soft limit in force afterwards (`None`:
/// unlimited).
#[cfg(unix)]
pub fn raise_nofile(wanted: u64) -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let now = getrlimit(Resource::Nofile);
    let target = match now.maximum {
        Some(hard) => wanted.min(hard),
        None => wanted,
    };
    match now.current {
        Some(soft) if soft < target => {
            match setrlimit(Resource::Nofile, Rlimit { current: Some(target), maximum: now.maximum }) {
                Ok(()) => Some(target),
                Err(e) => {
                    crate::warn!("cannot raise the open-file limit from {soft} to {target}: {e}");
                    Some(soft)
                }
            }
        }
        soft => soft,
    }
}

/// Descriptors this process holds now (`/proc/self/fd`); an estimate if that
/// cannot be read.
#[cfg(unix)]
pub fn in_use(listeners: usize) -> usize {
    match std::fs::read_dir("/proc/self/fd") {
        // The listing's own descriptor is in it.
        Ok(dir) => dir.count().saturating_sub(1),
        // stdio, reactor (3), signal pipe (4), listeners.
        Err(_) => 10 + listeners,
    }
}

/// The connection cap for this process: `asked`, or less when the descriptor
/// limit leaves no room for that many. Raises the soft limit first.
#[cfg(unix)]
pub fn cap(asked: usize, listeners: usize) -> io::Result<usize> {
    let already = in_use(listeners);
    let reserve = already + SAMPLER_FDS;
    let wanted = u64::try_from(socket_budget(asked).saturating_add(reserve)).unwrap_or(u64::MAX);
    let limit = raise_nofile(wanted).map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
    let free = limit.saturating_sub(reserve);
    match fit(asked, free) {
        Some(cap) => {
            if cap < asked {
                crate::info!(
                    "serving at most {cap} connections, not {asked}: the open-file limit is {limit} \
                     ({already} in use, {SAMPLER_FDS} kept for the sampler, {} for refused and closing sockets)",
                    reject_budget(cap)
                );
            }
            Ok(cap)
        }
        None => Err(io::Error::other(format!(
            "the open-file limit ({limit}) leaves no room for connections: \
             {already} descriptors are in use and {SAMPLER_FDS} are kept for the sampler"
        ))),
    }
}

/// Windows has no `RLIMIT_NOFILE`: sockets are handles, limited only by memory,
/// and the sampler keeps no descriptors to protect. The cap is `asked`, as given.
#[cfg(windows)]
pub fn cap(asked: usize, _listeners: usize) -> io::Result<usize> {
    Ok(asked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_table() {
        // (asked, free) → cap
        let table: &[(usize, usize, Option<usize>)] = &[
            (128, 100_000, Some(128)),
            (128, 144, Some(128)),
            (128, 143, Some(127)),
            (2000, 1000, Some(936)),
            (1_000_000, 1_048_000, Some(1_000_000)),
            (1_000_000, 1_000_000, Some(999_936)),
            (128, 20, Some(18)),
            (128, 2, Some(1)),
            (1, 2, Some(1)),
            (128, 1, None),
            (128, 0, None),
        ];
        for &(asked, free, want) in table {
            let got = fit(asked, free);
            assert_eq!(got, want, "fit({asked}, {free})");
            if let Some(cap) = got {
                assert!(socket_budget(cap) <= free, "fit({asked}, {free}) = {cap} overflows");
                assert!(cap == asked || socket_budget(cap + 1) > free, "fit({asked}, {free}) could be larger");
            }
        }
    }

    #[test]
    fn reject_budget_is_bounded() {
        assert_eq!(reject_budget(1), 1);
        assert_eq!(reject_budget(128), 16);
        assert_eq!(reject_budget(1_000_000), 64);
    }
}
