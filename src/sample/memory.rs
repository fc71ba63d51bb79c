//! Memory figures from /proc/meminfo, through sysinfo.

use crate::snapshot::Memory;

/// Reads the figures sysinfo loaded at its last `refresh_memory`.
pub fn read(sys: &sysinfo::System) -> Option<Memory> {
    build(sys.total_memory(), sys.free_memory(), sys.available_memory())
}

/// `None` when the total is 0: /proc/meminfo was unreadable, and percentages of
/// nothing would be made-up numbers.
pub fn build(total: u64, free: u64, available: u64) -> Option<Memory> {
    (total > 0).then_some(Memory { total, free, available })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_table() {
        assert_eq!(build(0, 0, 0), None);
        let m = build(17_119_047_680, 9_904_599_040, 9_904_594_944).expect("total > 0");
        assert_eq!((m.used(), m.used_percent()), (7_214_452_736, 42));
        // Above 4 GiB on a 32-bit target: still exact.
        let big = build(8 << 30, 1 << 30, 6 << 30).expect("total > 0");
        assert_eq!((big.used(), big.used_percent()), (2 << 30, 25));
    }
}
