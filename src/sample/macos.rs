//! The macOS mapping: pure functions from the values sysinfo returns on a Mac to
//! the pieces of a `Snapshot`, so that a macOS document has the same keys and the
//! same definitions as the Linux and Windows ones.
//!
//! No Mac, SDK or linker exists where fluxstat is built and tested, so macOS is
//! compile-checked (`cargo check --target aarch64-apple-darwin -Zbuild-std`) and
//! this mapping is unit-tested on Linux with the values sysinfo would return
//! (plain numbers and strings, not sysinfo's types, whose disk and network parts
//! are only built for macOS). The macOS `Sampler::new` and `sample` at the end call
//! sysinfo and feed these functions.
//!
//! Definitions, as on the other platforms and in the seed (psutil on macOS):
//! - memory: `used` = total − available (sysinfo's available on macOS is free +
//!   inactive + purgeable pages, what `vm_stat` shows and the seed calls available);
//! - disks: df-like, total and "available to the user"; sysinfo gives no
//!   blocks-free figure, so `used` = total − available (on APFS, free and available
//!   are the same space, shared by the container's volumes);
//! - network: sysinfo's cumulative counters; macOS reports no drop counts (0);
//! - load averages: two decimals, as on Linux.

use crate::sample::disk::DiskFilter;
use crate::sample::network::DevLine;
use crate::snapshot::{Counters, Disk, DiskUsage, Host, Load, Memory, Swap};

/// The families macOS does not give fluxstat: always `null`, never warned about
/// (sysinfo's sensor list is not built in; see README).
pub const ABSENT: &[&str] = &["temperature"];

/// Volumes of the macOS system layout that the Linux defaults do not catch: the
/// sealed system's helper volumes, and the pseudo filesystems. `/` (the system) and
/// `/System/Volumes/Data` (the user's data) stay, as `df -h` shows them.
pub const DEFAULT_EXCLUDE_MOUNT: &str = "/dev,/System/Volumes/VM,/System/Volumes/Preboot,/System/Volumes/Update,\
/System/Volumes/xarts,/System/Volumes/iSCPreboot,/System/Volumes/Hardware,/private/var/vm,/Volumes/Recovery";
pub const DEFAULT_EXCLUDE_FS: &str = "devfs,autofs,nullfs,lifs";

/// `sys.total_memory()`, `free_memory()`, `available_memory()`; `None` for a zero total.
pub fn memory(total: u64, free: u64, available: u64) -> Option<Memory> {
    (total > 0).then(|| Memory { total, free: free.min(total), available: available.min(total) })
}

/// `sys.total_swap()`, `free_swap()`: macOS grows swap on demand, so 0/0 is common.
pub fn swap(total: u64, free: u64) -> Swap {
    Swap { total, free: free.min(total) }
}

/// `System::load_average()`, rounded to two decimals; `None` if a figure is not a
/// finite non-negative number.
pub fn load(one: f64, five: f64, fifteen: f64) -> Option<Load> {
    let r = |x: f64| (x.is_finite() && x >= 0.0).then(|| (x * 100.0).round() / 100.0);
    Some(Load { one: r(one)?, five: r(five)?, fifteen: r(fifteen)? })
}

/// One entry of `sysinfo::Disks`, as plain values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskValues {
    /// `disk.name()`, e.g. `Macintosh HD` or `/dev/disk3s1s1`.
    pub name: String,
    /// `disk.mount_point()`.
    pub mount: String,
    /// `disk.file_system()`, e.g. `apfs`.
    pub filesystem: String,
    /// `disk.total_space()`.
    pub total: u64,
    /// `disk.available_space()`.
    pub available: u64,
    /// `disk.is_read_only()`.
    pub read_only: bool,
}

/// The disks to report: filtered like Linux mounts (`--disk-exclude-fs`,
/// `--disk-exclude-mount`), volumes without space dropped (df hides them too), one
/// entry per mount point (the last one sysinfo lists), sorted by mount point.
pub fn disks(values: Vec<DiskValues>, filter: &DiskFilter) -> Vec<Disk> {
    let mut kept: Vec<DiskValues> = Vec::with_capacity(values.len());
    for v in values {
        if v.total == 0 || filter.exclude_fs.matches(&v.filesystem) || filter.exclude_mount.matches(&v.mount) {
            continue;
        }
        kept.retain(|k| k.mount != v.mount);
        kept.push(v);
    }
    super::names::sort_by_key(&mut kept, |v| v.mount.as_str());
    kept.into_iter()
        .map(|v| {
            let free = v.available.min(v.total);
            Disk {
                name: v.name,
                mount: v.mount,
                filesystem: v.filesystem,
                usage: Some(DiskUsage { total: v.total, free, used: v.total - free }),
                read_only: Some(v.read_only),
                inodes: None,
            }
        })
        .collect()
}

/// One interface of `sysinfo::Networks`: its name and `total_received()`,
/// `total_packets_received()`, `total_errors_on_received()` and the transmitted
/// three. The shared `network::Rates` turns these into rates.
#[allow(clippy::too_many_arguments)]
pub fn interface(
    name: &str,
    rx_bytes: u64,
    rx_packets: u64,
    rx_errors: u64,
    tx_bytes: u64,
    tx_packets: u64,
    tx_errors: u64,
) -> DevLine {
    DevLine {
        name: name.to_owned(),
        rx: Counters { bytes: rx_bytes, packets: rx_packets, errors: rx_errors, drops: 0 },
        tx: Counters { bytes: tx_bytes, packets: tx_packets, errors: tx_errors, drops: 0 },
    }
}

/// Interfaces left out by default on macOS: loopback and the system's virtual
/// plumbing (AWDL/low-latency WLAN, Apple's tunnels, the bridge of Thunderbolt
/// networking, anpi/ap helpers); `en*` (Ethernet, Wi-Fi) stay.
pub const DEFAULT_NET_EXCLUDE: &str = "lo0,gif*,stf*,awdl*,llw*,utun*,anpi*,ap*,bridge*";

/// `System::host_name()`, `long_os_version()` (`macOS 14.5 Sonoma`),
/// `kernel_version()` (Darwin's, `23.5.0`), `cpu_arch()` (`arm64`); empty means unknown.
pub fn host(hostname: Option<String>, os: Option<String>, kernel: Option<String>, arch: &str) -> Host {
    let known = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
    Host {
        hostname: known(hostname),
        os: known(os),
        kernel: known(kernel),
        arch: known(Some(arch.to_owned())),
        model: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::glob::GlobList;

    fn mac_filter() -> DiskFilter {
        DiskFilter {
            exclude_fs: GlobList::parse(DEFAULT_EXCLUDE_FS),
            exclude_mount: GlobList::parse(DEFAULT_EXCLUDE_MOUNT),
        }
    }

    fn volume(name: &str, mount: &str, fs: &str, total: u64, available: u64, read_only: bool) -> DiskValues {
        DiskValues { name: name.into(), mount: mount.into(), filesystem: fs.into(), total, available, read_only }
    }

    #[test]
    fn memory_used_is_total_minus_available() {
        // A 16 GiB MacBook: sysinfo's figures in bytes.
        let m = memory(17_179_869_184, 1_073_741_824, 6_442_450_944).expect("memory");
        assert_eq!((m.used(), m.used_percent()), (10_737_418_240, 63));
        assert_eq!(memory(0, 0, 0), None, "a zero total is unknown, not 0 %");
        assert_eq!(memory(100, 200, 300).map(|m| (m.free, m.available, m.used())), Some((100, 100, 0)));
        assert_eq!(swap(0, 0).used_percent(), 0);
        assert_eq!(swap(2 << 30, 1 << 30).used_percent(), 50);
    }

    #[test]
    fn load_is_rounded_and_must_be_a_number() {
        let l = load(1.234_567, 0.005, 12.0).expect("load");
        assert_eq!((l.one, l.five, l.fifteen), (1.23, 0.01, 12.0));
        assert_eq!(load(f64::NAN, 1.0, 1.0), None);
        assert_eq!(load(1.0, -0.5, 1.0), None);
    }

    #[test]
    fn disks_of_a_typical_mac() {
        // What sysinfo lists on macOS 14 with APFS and a USB stick.
        let gib = 1u64 << 30;
        let listed = vec![
            volume("Macintosh HD", "/", "apfs", 494 * gib, 300 * gib, true),
            volume("Macintosh HD - Data", "/System/Volumes/Data", "apfs", 494 * gib, 300 * gib, false),
            volume("Preboot", "/System/Volumes/Preboot", "apfs", 494 * gib, 300 * gib, false),
            volume("VM", "/System/Volumes/VM", "apfs", 494 * gib, 300 * gib, false),
            volume("devfs", "/dev", "devfs", 0, 0, false),
            volume("STICK", "/Volumes/STICK", "msdos", 16 * gib, 20 * gib, false),
        ];
        let disks = disks(listed, &mac_filter());
        let mounts: Vec<&str> = disks.iter().map(|d| d.mount.as_str()).collect();
        assert_eq!(mounts, ["/", "/System/Volumes/Data", "/Volumes/STICK"]);
        let root = &disks[0];
        assert_eq!(
            (root.name.as_str(), root.filesystem.as_str(), root.read_only),
            ("Macintosh HD", "apfs", Some(true))
        );
        let u = root.usage.expect("usage");
        assert_eq!((u.total, u.free, u.used, u.used_percent()), (494 * gib, 300 * gib, 194 * gib, 39));
        let stick = disks[2].usage.expect("usage");
        assert_eq!((stick.free, stick.used), (16 * gib, 0), "available above total is clamped");
        assert_eq!(disks[0].inodes, None);
    }

    #[test]
    fn a_mount_point_listed_twice_is_reported_once() {
        let gib = 1u64 << 30;
        let listed = vec![
            volume("old", "/Volumes/X", "apfs", 10 * gib, 5 * gib, false),
            volume("new", "/Volumes/X", "apfs", 20 * gib, 5 * gib, false),
        ];
        let disks = disks(listed, &mac_filter());
        assert_eq!(disks.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(), ["new"]);
    }

    #[test]
    fn interfaces_feed_the_shared_rates() {
        use crate::sample::network::{NetFilter, Rates};
        use std::time::{Duration, Instant};
        let filter = NetFilter { include: GlobList::default(), exclude: GlobList::parse(DEFAULT_NET_EXCLUDE) };
        let names = ["lo0", "en0", "awdl0", "utun3", "en5", "bridge0"];
        let kept: Vec<&str> = names.into_iter().filter(|n| filter.keeps(n)).collect();
        assert_eq!(kept, ["en0", "en5"]);

        let mut rates = Rates::default();
        let t0 = Instant::now();
        let first = rates.update(vec![interface("en0", 1000, 10, 0, 500, 5, 1)], t0);
        assert_eq!((first[0].rx.bytes, first[0].tx.errors, first[0].rx_bytes_per_second), (1000, 1, None));
        let second = rates.update(vec![interface("en0", 3000, 20, 0, 1500, 9, 1)], t0 + Duration::from_secs(2));
        assert_eq!((second[0].rx_bytes_per_second, second[0].tx_bytes_per_second), (Some(1000), Some(500)));
        assert_eq!(second[0].rx.drops, 0);
    }

    #[test]
    fn host_facts_empty_means_unknown() {
        let h = host(Some("studio".into()), Some("macOS 14.5 Sonoma".into()), Some("23.5.0".into()), "arm64");
        assert_eq!(
            (h.hostname.as_deref(), h.os.as_deref(), h.kernel.as_deref(), h.arch.as_deref()),
            (Some("studio"), Some("macOS 14.5 Sonoma"), Some("23.5.0"), Some("arm64"))
        );
        let unknown = host(Some(" ".into()), None, Some(String::new()), "");
        assert_eq!((unknown.hostname, unknown.os, unknown.kernel, unknown.arch), (None, None, None, None));
    }
}

/// The macOS `Sampler::sample`: sysinfo for every family (it works there; only
/// temperatures are left `null`), mapped by the functions above.
#[cfg(target_vendor = "apple")]
mod sampler {
    use std::time::{Duration, Instant, SystemTime};

    use sysinfo::{Disks, Networks, ProcessRefreshKind, ProcessesToUpdate, System};

    use super::{disks, host, interface, load, memory, swap, DiskValues};
    use crate::sample::disk::DiskReader;
    use crate::sample::network::{unique_and_sorted, DevLine, Rates};
    use crate::sample::{
        cpu, reader_deadline, unix_micros, Own, Sampler, SamplerConfig, SamplerError, HOST_REFRESH, PROCESSES_REFRESH,
    };
    use crate::snapshot::Snapshot;

    /// sysinfo's disk and network lists, kept between samples.
    pub struct Lists {
        disks: Option<Disks>,
        networks: Option<Networks>,
    }

    impl Lists {
        pub fn new() -> Lists {
            Lists { disks: Disks::new_with_refreshed_list().ok(), networks: Networks::new_with_refreshed_list().ok() }
        }
    }

    impl Sampler {
        /// Creates the sampler and takes the first CPU reading (the start of the first window).
        pub fn new(config: SamplerConfig) -> Result<Sampler, SamplerError> {
            let mut sys = System::new().map_err(|e| SamplerError(format!("cannot read system figures: {e}")))?;
            sys.refresh_cpu_usage();
            Ok(Sampler {
                sys,
                lists: Lists::new(),
                deadline: reader_deadline(config.interval),
                config,
                last_cpu_refresh: Instant::now(),
                seq: 0,
                failed: Vec::new(),
                degraded: Vec::new(),
                rates: Rates::default(),
                disks: DiskReader::new(Duration::from_secs(1)),
                next_tick: None,
                host: None,
                processes: None,
            })
        }

        /// Reads everything the document reports, on macOS. The CPU figures cover
        /// the time since the previous call (or since `new`).
        pub fn sample(&mut self) -> Snapshot {
            let started = Instant::now();
            self.last_cpu_refresh = started;
            self.sys.refresh_cpu_usage();
            self.sys.refresh_memory();
            let host = match &self.host {
                Some((at, host)) if at.elapsed() < HOST_REFRESH => host.clone(),
                _ => {
                    let host = host(
                        System::host_name().ok(),
                        System::long_os_version().ok(),
                        System::kernel_version().ok(),
                        &System::cpu_arch(),
                    );
                    self.host = Some((started, host.clone()));
                    host
                }
            };
            let processes = match self.processes {
                Some((at, n)) if at.elapsed() < PROCESSES_REFRESH => Some(n),
                _ => {
                    self.sys.refresh_processes_specifics(ProcessesToUpdate::All, true, ProcessRefreshKind::nothing());
                    let n = self.sys.processes().len() as u64;
                    self.processes = Some((started, n));
                    Some(n)
                }
            };
            let lists = &mut self.lists;
            let disks = lists.disks.as_mut().map(|list| {
                list.refresh(true);
                let values = list
                    .iter()
                    .map(|d| DiskValues {
                        name: d.name().to_string_lossy().into_owned(),
                        mount: d.mount_point().to_string_lossy().into_owned(),
                        filesystem: d.file_system().to_string_lossy().into_owned(),
                        total: d.total_space(),
                        available: d.available_space(),
                        read_only: d.is_read_only(),
                    })
                    .collect();
                disks(values, &self.config.disks)
            });
            let filter = &self.config.network;
            let rates = &mut self.rates;
            let network = lists.networks.as_mut().map(|list| {
                list.refresh(true);
                let lines: Vec<DevLine> = list
                    .iter()
                    .filter_map(|(name, d)| {
                        let name = name.to_str().filter(|n| filter.keeps(n))?;
                        Some(interface(
                            name,
                            d.total_received(),
                            d.total_packets_received(),
                            d.total_errors_on_received(),
                            d.total_transmitted(),
                            d.total_packets_transmitted(),
                            d.total_errors_on_transmitted(),
                        ))
                    })
                    .collect();
                rates.update(unique_and_sorted(lines), started)
            });
            let (rss_bytes, cpu_time_ms) = self.own_figures();
            let mut snapshot = Snapshot {
                uptime: System::uptime().ok(),
                cpu: cpu::read(&self.sys),
                memory: memory(self.sys.total_memory(), self.sys.free_memory(), self.sys.available_memory()),
                swap: Some(swap(self.sys.total_swap(), self.sys.free_swap())),
                load: System::load_average().ok().and_then(|l| load(l.one, l.five, l.fifteen)),
                disks,
                network,
                temperatures: None,
                host: Some(host),
                processes,
                own: Own::default(),
                taken_at_us: unix_micros(SystemTime::now()),
                ..Snapshot::default()
            };
            snapshot.own = self.config.own(started.elapsed(), rss_bytes, cpu_time_ms);
            self.note_failures(&snapshot);
            snapshot
        }

        /// fluxstat's resident memory (bytes) and CPU time (ms), from sysinfo.
        fn own_figures(&mut self) -> (Option<u64>, Option<u64>) {
            let Ok(pid) = sysinfo::get_current_pid() else { return (None, None) };
            let kind = ProcessRefreshKind::nothing().with_memory().with_cpu();
            self.sys.refresh_processes_specifics(ProcessesToUpdate::Some(&[pid]), false, kind);
            match self.sys.process(pid) {
                Some(p) => (Some(p.memory()), Some(p.accumulated_cpu_time())),
                None => (None, None),
            }
        }
    }
}
#[cfg(target_vendor = "apple")]
pub use sampler::Lists;
