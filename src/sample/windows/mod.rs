//! The Windows readers: the same `Snapshot` as on Linux, from Win32 calls instead of
//! `/proc` and `/sys`. `--procfs` and `--sysfs` mean nothing here.
//!
//! sysinfo (the sampler of the design) gives memory, swap, uptime and the host
//! facts, as on Linux. Three families come from small readers on `windows-sys`
//! instead, because sysinfo cannot produce them under wine, where the Windows build
//! is tested (checked with wine 8.0, Debian 12):
//! - CPU (`cpu`): sysinfo reads it through PDH, and wine's `pdh.dll` lacks
//!   `PdhEnumObjectsW`: the first `refresh_cpu_usage` aborts the process.
//!   `NtQuerySystemInformation(SystemProcessorPerformanceInformation)` gives the
//!   idle/kernel/user times of each logical CPU on Windows, and under wine it is
//!   computed from the host's `/proc/stat`.
//! - Disks (`disk`): sysinfo lists volumes by their GUID paths, and wine's
//!   `GetDriveTypeW` does not know those, so the list is empty. Drive letters with
//!   `GetDiskFreeSpaceExW` and `GetVolumeInformationW` give the seed's `C:\` / `NTFS`
//!   entries, and the same calls answer correctly under wine.
//! - Network (`network`): sysinfo drops interfaces whose link speed is 0, which is
//!   every interface under wine. `GetIfTable2` gives the counters; the rates are
//!   computed by the shared `network::Rates`, as on Linux.
//!
//! Process count and fluxstat's own figures (`own`) are one call each
//! (`K32EnumProcesses`, `K32GetProcessMemoryInfo`, `GetProcessTimes`), where sysinfo
//! would collect every process's details to count them. Load averages and
//! temperatures do not exist on Windows: `null`.

//!
//! What the Linux sampler adds on top, and how it maps here: the temperature
//! family and its deadline worker do not exist (no temperatures: `null`, never
//! warned about, like load); no file is kept open (there is no `/proc` to keep);
//! statvfs's deadline is kept, through the shared `DiskReader`, for drives whose
//! `GetDiskFreeSpaceExW` hangs (a dead network share). A family is never blamed on
//! fluxstat here (no descriptor budget to run out of), so `/health` is degraded
//! only when sampling stalls.

pub mod cpu;
pub mod disk;
pub mod host;
pub mod network;
pub mod own;

use std::time::{Duration, Instant, SystemTime};

/// The families Windows does not have: always `null`, never warned about.
pub const ABSENT: &[&str] = &["load", "temperature"];

/// Drives left out by default: optical media (the drive list already drops CD/DVD
/// drives by type; this catches a disc image mounted as a drive).
pub const DEFAULT_EXCLUDE_FS: &str = "CDFS,UDF";
/// No drive letter is left out by default.
pub const DEFAULT_EXCLUDE_MOUNT: &str = "";
/// Interfaces left out by default: the IPv6 transition tunnels (ISATAP, Teredo,
/// 6to4) and the internal virtual switches of WSL and Hyper-V's Default Switch
/// (an external switch carries the host's own traffic and stays). Loopback and
/// the filter-driver rows are dropped by type in `network`.
pub const DEFAULT_NET_EXCLUDE: &str = "isatap*,Teredo*,6to4*,vEthernet (WSL*),vEthernet (Default Switch)";

use super::{
    disk::DiskReader, network::Rates, reader_deadline, unix_micros, Own, Sampler, SamplerConfig, SamplerError,
    HOST_REFRESH, PROCESSES_REFRESH,
};
use crate::snapshot::{Memory, Snapshot, Swap};

/// A NUL-terminated UTF-16 string for a Win32 `PCWSTR` argument.
pub(crate) fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

/// A UTF-16 buffer up to its first NUL, as a `String` (unpaired surrogates replaced).
pub(crate) fn from_wide(buf: &[u16]) -> String {
    let end = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
    String::from_utf16_lossy(&buf[..end])
}

impl Sampler {
    /// Creates the sampler and takes the first CPU reading (the start of the first window).
    pub fn new(config: SamplerConfig) -> Result<Sampler, SamplerError> {
        let sys = sysinfo::System::new().map_err(|e| SamplerError(format!("cannot read system figures: {e}")))?;
        // As on Linux: half an interval for the drives, within 1..2 s.
        let disk_timeout = (config.interval / 2).clamp(Duration::from_secs(1), Duration::from_secs(2));
        Ok(Sampler {
            sys,
            cpu: cpu::Meter::start(),
            deadline: reader_deadline(config.interval),
            config,
            last_cpu_refresh: Instant::now(),
            seq: 0,
            failed: Vec::new(),
            degraded: Vec::new(),
            rates: Rates::default(),
            disks: DiskReader::new(disk_timeout),
            next_tick: None,
            host: None,
            processes: None,
        })
    }

    /// Reads everything the document reports, on Windows (the Linux `sample` is in
    /// the parent module). The CPU figures cover the time since the previous call
    /// (or since `new`).
    pub fn sample(&mut self) -> Snapshot {
        let started = Instant::now();
        self.last_cpu_refresh = started;
        let mut snapshot = self.read_machine(started);
        snapshot.taken_at_us = unix_micros(SystemTime::now());
        let took = started.elapsed();
        snapshot.own = self.config.own(took, own::rss_bytes(), own::cpu_time_ms());
        crate::debug!("sample took {} µs", took.as_micros());
        self.note_failures(&snapshot);
        snapshot
    }

    /// Every family of the document but fluxstat's own figures.
    fn read_machine(&mut self, started: Instant) -> Snapshot {
        self.sys.refresh_memory();
        let host = match &self.host {
            Some((at, host)) if at.elapsed() < HOST_REFRESH => host.clone(),
            _ => {
                let host = host::read();
                self.host = Some((started, host.clone()));
                host
            }
        };
        let processes = match self.processes {
            Some((at, n)) if at.elapsed() < PROCESSES_REFRESH => Some(n),
            _ => {
                // A failed count is tried again next sample.
                let n = host::count_processes();
                self.processes = n.map(|n| (started, n));
                n
            }
        };
        let mounts = disk::drives(&self.config.disks);
        Snapshot {
            uptime: sysinfo::System::uptime().ok(),
            cpu: self.cpu.read(),
            memory: memory(&self.sys),
            swap: Some(Swap { total: self.sys.total_swap(), free: self.sys.free_swap() }),
            load: None,
            disks: Some(self.disks.read_mounts(mounts)),
            network: network::read(&self.config.network, &mut self.rates, started),
            temperatures: None,
            host: Some(host),
            processes,
            own: Own::default(),
            taken_at_us: 0,
            ..Snapshot::default()
        }
    }
}

/// Memory as the seed defines it on Windows (psutil): `available` and `free` are
/// both `ullAvailPhys`, so `memory_used` is total − available.
fn memory(sys: &sysinfo::System) -> Option<Memory> {
    let total = sys.total_memory();
    (total > 0).then(|| {
        let available = sys.available_memory().min(total);
        Memory { total, free: available, available }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_strings_round_trip() {
        assert_eq!(wide("C:\\"), [u16::from(b'C'), u16::from(b':'), u16::from(b'\\'), 0]);
        assert_eq!(from_wide(&wide("Ethernet 2")), "Ethernet 2");
        assert_eq!(from_wide(&[u16::from(b'N'), 0, u16::from(b'x')]), "N");
        assert_eq!(from_wide(&[]), "");
    }
}
