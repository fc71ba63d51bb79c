//! Plain data for one sample of the machine: what the sampler produces and `wire`
//! serialises. No I/O, no serialisation, no sysinfo here.
//!
//! Every family is an `Option`: a family that could not be read is `None` and
//! becomes `null` in the document, while the others are still served.

/// One complete sample, as published to the responder.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Whole seconds since boot.
    pub uptime: Option<u64>,
    pub cpu: Option<Cpu>,
    pub memory: Option<Memory>,
    pub disks: Option<Vec<Disk>>,
    /// When the sample was taken: microseconds since the Unix epoch, UTC.
    pub taken_at_us: i64,
}

/// CPU usage over the last sample window.
#[derive(Debug, Clone, PartialEq)]
pub struct Cpu {
    /// Whole-machine usage, 0..=100, one decimal.
    pub total_percent: f64,
    /// Usage of each logical CPU in kernel order (cpu0, cpu1, ...), 0..=100, one decimal.
    pub per_core_percent: Vec<f64>,
}

/// Memory figures in bytes, from /proc/meminfo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// MemTotal.
    pub total: u64,
    /// MemFree: memory nobody uses, not even the page cache.
    pub free: u64,
    /// MemAvailable: what can be given to programs without swapping.
    pub available: u64,
}

impl Memory {
    /// Used memory as `free`(1) and the original tool define it: total - available.
    pub fn used(&self) -> u64 {
        self.total.saturating_sub(self.available)
    }

    /// round(used / total * 100) as an integer; 0 when total is unknown (0).
    pub fn used_percent(&self) -> u64 {
        percent(self.used(), self.total)
    }
}

/// One mounted filesystem with df-style usage figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    /// The mount source, e.g. `/dev/mmcblk0p2`.
    pub name: String,
    /// The mount point, e.g. `/`.
    pub mount: String,
    /// The filesystem type, e.g. `ext4`.
    pub filesystem: String,
    pub usage: DiskUsage,
}

/// Disk usage in bytes, defined as `df` defines it (see README, "Disk").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskUsage {
    /// f_blocks × f_frsize.
    pub total: u64,
    /// f_bavail × f_frsize: space available to unprivileged users.
    pub free: u64,
    /// (f_blocks − f_bfree) × f_frsize.
    pub used: u64,
}

impl DiskUsage {
    /// round(used / (used + free) × 100), as `df` computes Use%.
    pub fn used_percent(&self) -> u64 {
        percent(self.used, self.used.saturating_add(self.free))
    }
}

/// round(part / whole × 100), computed in integers so that it is exact for any
/// 64-bit byte count; 0 when `whole` is 0.
pub fn percent(part: u64, whole: u64) -> u64 {
    if whole == 0 {
        return 0;
    }
    // u128 cannot overflow for u64 inputs; round half up like Python's round()
    // does for the .5 cases that matter here (ties are vanishingly rare).
    let scaled = u128::from(part) * 200 + u128::from(whole);
    let p = scaled / (u128::from(whole) * 2);
    u64::try_from(p).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_table() {
        let table: &[(u64, u64, u64)] = &[
            (0, 0, 0),
            (5, 0, 0),
            (0, 100, 0),
            (1, 200, 1), // 0.5 rounds up
            (1, 201, 0), // 0.4975
            (42, 100, 42),
            (7_214_452_736, 17_119_047_680, 42),
            (100, 100, 100),
            (u64::MAX, u64::MAX, 100),
            (u64::MAX / 2, u64::MAX, 50),
            (192_933_105_664, 255_482_392_576, 76),
        ];
        for &(part, whole, want) in table {
            assert_eq!(percent(part, whole), want, "percent({part}, {whole})");
        }
    }

    #[test]
    fn memory_used_is_total_minus_available() {
        let m = Memory { total: 1000, free: 100, available: 600 };
        assert_eq!(m.used(), 400);
        assert_eq!(m.used_percent(), 40);
        let odd = Memory { total: 100, free: 0, available: 200 };
        assert_eq!(odd.used(), 0, "available above total must not underflow");
    }

    #[test]
    fn disk_percent_uses_used_plus_free_like_df() {
        // Reserved blocks (5 % on ext4) are in neither used nor free.
        let u = DiskUsage { total: 1000, free: 200, used: 750 };
        assert_eq!(u.used_percent(), 79); // 750 / 950 = 78.9 %
    }
}
