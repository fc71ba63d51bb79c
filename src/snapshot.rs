//! Plain data for one sample of the machine: what the sampler produces and `wire`
//! serialises. No I/O, no serialisation, no sysinfo here.
//!
//! Every family is an `Option`: a family that could not be read is `None` and
//! becomes `null` in the document, while the others are still served.

/// One complete sample, as published to the responder. `Default` is a sample in
/// which nothing could be read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Whole seconds since boot.
    pub uptime: Option<u64>,
    pub cpu: Option<Cpu>,
    pub memory: Option<Memory>,
    pub swap: Option<Swap>,
    pub load: Option<Load>,
    pub disks: Option<Vec<Disk>>,
    /// Interfaces sorted by name.
    pub network: Option<Vec<Interface>>,
    /// Sensors sorted by name.
    pub temperatures: Option<Vec<Sensor>>,
    pub host: Option<Host>,
    /// Number of processes (numeric entries of /proc).
    pub processes: Option<u64>,
    pub power: Option<Power>,
    /// Logical CPUs in kernel order.
    pub cpu_frequency: Option<Vec<CoreFrequency>>,
    /// Fans sorted by name.
    pub fans: Option<Vec<Fan>>,
    /// Whole block devices sorted by name.
    pub disk_io: Option<Vec<BlockDevice>>,
    pub flash: Option<Vec<FlashWear>>,
    pub conntrack: Option<Conntrack>,
    /// Active DHCP leases in the lease files read.
    pub dhcp_leases: Option<u64>,
    /// Wireless interfaces sorted by name.
    pub wifi: Option<Vec<Radio>>,
    pub reboot_required: Option<bool>,
    /// fluxstat's own figures.
    pub own: Own,
    /// When the sample was taken: microseconds since the Unix epoch, UTC.
    pub taken_at_us: i64,
}

impl Snapshot {
    /// The families that could not be read, by their key in the document.
    pub fn unavailable(&self) -> Vec<&'static str> {
        let families = [
            ("uptime", self.uptime.is_none()),
            ("cpu", self.cpu.is_none()),
            ("memory", self.memory.is_none()),
            ("swap", self.swap.is_none()),
            ("load", self.load.is_none()),
            ("disk", self.disks.is_none()),
            ("network", self.network.is_none()),
            ("temperature", self.temperatures.is_none()),
            ("host", self.host.is_none()),
            ("processes", self.processes.is_none()),
        ];
        families.into_iter().filter(|(_, missing)| *missing).map(|(name, _)| name).collect()
    }
}

/// Swap space in bytes, from /proc/meminfo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Swap {
    /// SwapTotal.
    pub total: u64,
    /// SwapFree.
    pub free: u64,
}

impl Swap {
    pub fn used(&self) -> u64 {
        self.total.saturating_sub(self.free)
    }

    /// round(used / total × 100); 0 without swap.
    pub fn used_percent(&self) -> u64 {
        percent(self.used(), self.total)
    }
}

/// Load averages over 1, 5 and 15 minutes, two decimals.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Load {
    pub one: f64,
    pub five: f64,
    pub fifteen: f64,
}

/// Cumulative counters of one network interface and the byte rates over the last
/// sample interval. A rate is `None` when it cannot be known: the first sample of an
/// interface, or a counter that went backwards (interface recreated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub rx: Counters,
    pub tx: Counters,
    pub rx_bytes_per_second: Option<u64>,
    pub tx_bytes_per_second: Option<u64>,
}

/// One direction of an interface's /proc/net/dev counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub bytes: u64,
    pub packets: u64,
    pub errors: u64,
    pub drops: u64,
}

/// One temperature sensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Sensor {
    /// Stable name: the thermal zone's type (`cpu_thermal`), or the hwmon chip and
    /// the input's label (`coretemp_package_id_0`).
    pub name: String,
    /// °C, one decimal.
    pub celsius: f64,
}

/// What the machine is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub hostname: Option<String>,
    /// PRETTY_NAME of /etc/os-release, or OpenWrt's DISTRIB_DESCRIPTION.
    pub os: Option<String>,
    /// Kernel release, e.g. `6.6.31+rpt-rpi-v8`.
    pub kernel: Option<String>,
    /// Machine hardware name as uname(2) gives it, e.g. `aarch64`, `armv7l`.
    pub arch: Option<String>,
    /// Board model where the board says it, e.g. `Raspberry Pi 4 Model B Rev 1.4`.
    pub model: Option<String>,
}

/// fluxstat's own figures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Own {
    pub interval_ms: u64,
    /// How long reading this sample took, µs (serialisation not included).
    pub sample_duration_us: u64,
    /// Resident memory of the fluxstat process, bytes.
    pub rss_bytes: Option<u64>,
    /// CPU time (user + system) used by fluxstat since it started, ms.
    pub cpu_time_ms: Option<u64>,
    pub connections_open: u64,
    pub requests_served: u64,
    /// The InfluxDB pusher's counters; `None` when it is off.
    #[cfg(feature = "push")]
    pub influx: Option<Pushed>,
    /// The MQTT pusher's counters; `None` when it is off.
    #[cfg(feature = "push")]
    pub mqtt: Option<Pushed>,
}

/// What one pusher did since start, in samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pushed {
    /// Samples the server accepted.
    pub sent: u64,
    /// Attempts that failed (connection refused or lost, timeout, an error status).
    pub failed: u64,
    /// Samples given up: pushed out of a full backlog, or refused by the server
    /// as malformed (4xx), or not published while the broker was away.
    pub dropped: u64,
    /// Samples waiting in the backlog now.
    pub queued: u64,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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
    /// `None` while the filesystem does not answer statvfs (a dead NFS server).
    pub usage: Option<DiskUsage>,
    /// Mounted read-only (statvfs ST_RDONLY).
    pub read_only: Option<bool>,
    /// `None` where the filesystem has no inode figures (vfat, btrfs report 0).
    pub inodes: Option<Inodes>,
}

/// Inode figures, as `df -i` shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inodes {
    /// f_files.
    pub total: u64,
    /// f_ffree.
    pub free: u64,
}

impl Inodes {
    pub fn used(&self) -> u64 {
        self.total.saturating_sub(self.free)
    }
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

/// Raspberry Pi power and throttling: the firmware's `get_throttled` bits and the
/// `rpi_volt` hwmon alarm, whichever the machine has (`source` says which).
/// A flag is `None` when no source the machine has tells it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Power {
    /// `get_throttled`, `rpi_volt` or `get_throttled+rpi_volt`.
    pub source: &'static str,
    /// The raw `get_throttled` bitmask.
    pub throttled_bits: Option<u32>,
    pub under_voltage: Option<bool>,
    pub frequency_capped: Option<bool>,
    pub throttled: Option<bool>,
    pub soft_temperature_limit: Option<bool>,
    pub under_voltage_since_boot: Option<bool>,
    pub frequency_capped_since_boot: Option<bool>,
    pub throttled_since_boot: Option<bool>,
    pub soft_temperature_limit_since_boot: Option<bool>,
}

/// One logical CPU's cpufreq figures, MHz.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreFrequency {
    /// The kernel's CPU number (`cpu3` in the document).
    pub cpu: u32,
    /// `scaling_cur_freq`: the frequency at the moment of the read.
    pub current_mhz: Option<u64>,
    /// `scaling_min_freq`, `scaling_max_freq`: the policy's limits now.
    pub min_mhz: Option<u64>,
    pub max_mhz: Option<u64>,
}

/// One fan: an hwmon `fan*_input` and, where present, its PWM duty.
#[derive(Debug, Clone, PartialEq)]
pub struct Fan {
    /// Chip and label (`pwmfan_fan1`), as temperatures are named.
    pub name: String,
    pub rpm: u64,
    /// `pwmN` (0–255) as a percentage, one decimal.
    pub pwm_percent: Option<f64>,
}

/// One whole block device's I/O from `/proc/diskstats`.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockDevice {
    /// Kernel name: `mmcblk0`, `sda`, `nvme0n1`.
    pub name: String,
    pub read_bytes: u64,
    pub written_bytes: u64,
    pub reads: u64,
    pub writes: u64,
    pub read_bytes_per_second: Option<u64>,
    pub written_bytes_per_second: Option<u64>,
    pub reads_per_second: Option<f64>,
    pub writes_per_second: Option<f64>,
    /// Share of the interval with I/O in flight (`io_ticks`), 0..=100, one decimal.
    pub busy_percent: Option<f64>,
}

/// Wear an eMMC device reports (JEDEC levels, as the kernel prints them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlashWear {
    /// `mmcblk0`.
    pub name: String,
    /// `life_time` type A and B: 1 = 0–10 % used … 10 = 90–100 %, 11 = exceeded.
    pub life_time_a: Option<u8>,
    pub life_time_b: Option<u8>,
    /// `pre_eol_info`: 1 normal, 2 warning, 3 urgent.
    pub pre_eol_info: Option<u8>,
}

impl FlashWear {
    /// What `pre_eol_info` means: normal, warning, urgent (other values: reserved).
    pub fn pre_eol(&self) -> Option<&'static str> {
        self.pre_eol_info.map(|l| match l {
            1 => "normal",
            2 => "warning",
            3 => "urgent",
            _ => "reserved",
        })
    }
}

/// The connection-tracking table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conntrack {
    pub count: u64,
    pub max: u64,
}

impl Conntrack {
    pub fn used_percent(&self) -> u64 {
        percent(self.count, self.max)
    }
}

/// Associated stations of one wireless interface.
#[derive(Debug, Clone, PartialEq)]
pub struct Radio {
    /// Interface name: `phy0-ap0`, `wlan0`.
    pub name: String,
    pub stations: u64,
    /// Weakest and mean signal of the stations, dBm (`None` without stations).
    pub signal_min_dbm: Option<i64>,
    pub signal_mean_dbm: Option<f64>,
    pub frequency_mhz: Option<u32>,
    pub channel: Option<u32>,
}
