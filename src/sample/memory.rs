//! Memory and swap from `<procfs>/meminfo`: a pure parse of the text the sampler
//! reads (a file it keeps open, see `files`).

use crate::snapshot::{Memory, Swap};

/// Parses /proc/meminfo (`MemTotal:  16318480 kB`; the kernel's "kB" is KiB).
/// Either is `None` when meminfo lacks it.
/// Kernels before 3.14 lack MemAvailable; it is then estimated as free + buffers +
/// page cache + reclaimable slab − shared memory, as `free` does.
pub fn parse(text: &str) -> (Option<Memory>, Option<Swap>) {
    let mut f = [None::<u64>; 9];
    const KEYS: [&str; 9] =
        ["MemTotal", "MemFree", "MemAvailable", "Buffers", "Cached", "SReclaimable", "Shmem", "SwapTotal", "SwapFree"];
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else { continue };
        if let Some(i) = KEYS.iter().position(|k| *k == key) {
            f[i] =
                rest.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()).map(|kib| kib.saturating_mul(1024));
        }
    }
    let [total, free, available, buffers, cached, reclaimable, shmem, swap_total, swap_free] = f;
    let memory = match (total, free) {
        (Some(total), Some(free)) if total > 0 => {
            let available = available.unwrap_or_else(|| {
                free.saturating_add(buffers.unwrap_or(0))
                    .saturating_add(cached.unwrap_or(0))
                    .saturating_add(reclaimable.unwrap_or(0))
                    .saturating_sub(shmem.unwrap_or(0))
                    .min(total)
            });
            Some(Memory { total, free, available })
        }
        _ => None,
    };
    let swap = match (swap_total, swap_free) {
        (Some(total), Some(free)) => Some(Swap { total, free }),
        _ => None,
    };
    (memory, swap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let modern = "MemTotal:       16318480 kB\nMemFree:         1234560 kB\nMemAvailable:    8000000 kB\n\
                      Buffers:          100 kB\nSwapTotal:       2097148 kB\nSwapFree:        2097148 kB\n";
        let (m, s) = parse(modern);
        assert_eq!(m, Some(Memory { total: 16_318_480 * 1024, free: 1_234_560 * 1024, available: 8_000_000 * 1024 }));
        assert_eq!(s, Some(Swap { total: 2_097_148 * 1024, free: 2_097_148 * 1024 }));
        assert_eq!(s.map(|s| (s.used(), s.used_percent())), Some((0, 0)));

        // Linux < 3.14: no MemAvailable.
        let old =
            "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\nCached: 300 kB\nSReclaimable: 20 kB\nShmem: 70 kB\n";
        assert_eq!(parse(old).0.map(|m| m.available), Some(400 * 1024));

        // No swap configured: zeros, not missing.
        let noswap = "MemTotal: 1000 kB\nMemFree: 100 kB\nMemAvailable: 500 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n";
        assert_eq!(parse(noswap).1.map(|s| s.used_percent()), Some(0));

        assert_eq!(parse(""), (None, None));
        assert_eq!(parse("MemTotal: 0 kB\nMemFree: 0 kB\n").0, None, "a zero total is unknown, not 0 %");
        assert_eq!(parse("MemTotal: x kB\nMemFree: 1 kB\n").0, None);
    }

    #[test]
    fn memory_above_4_gib_is_exact_on_32_bit() {
        let (m, _) = parse("MemTotal: 8388608 kB\nMemFree: 1048576 kB\nMemAvailable: 6291456 kB\n");
        let m = m.expect("memory");
        assert_eq!((m.total, m.used(), m.used_percent()), (8 << 30, 2 << 30, 25));
    }
}
