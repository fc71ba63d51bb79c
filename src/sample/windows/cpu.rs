//! CPU usage on Windows: the idle, kernel and user times of each logical CPU from
//! `NtQuerySystemInformation(SystemProcessorPerformanceInformation)`, differenced
//! between two samples. Kernel time includes idle time, as on Windows it does.
//! (Why not sysinfo: see the parent module.) `usage` is pure and tested here.

use windows_sys::Wdk::System::SystemInformation::{NtQuerySystemInformation, SystemProcessorPerformanceInformation};
use windows_sys::Win32::System::WindowsProgramming::SYSTEM_PROCESSOR_PERFORMANCE_INFORMATION as ProcessorTimes;

use crate::snapshot::Cpu;

/// One logical CPU's cumulative times, in 100 ns units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Times {
    pub idle: u64,
    /// kernel + user (kernel time includes idle time).
    pub total: u64,
}

/// The previous reading, the start of the current window.
#[derive(Debug, Default)]
pub struct Meter {
    previous: Vec<Times>,
}

impl Meter {
    /// Takes the first reading.
    pub fn start() -> Meter {
        Meter { previous: read_times().unwrap_or_default() }
    }

    /// Usage since the previous call (or `start`); `None` when the times cannot be
    /// read or the number of CPUs changed.
    pub fn read(&mut self) -> Option<Cpu> {
        let now = read_times()?;
        let cpu = usage(&self.previous, &now);
        self.previous = now;
        cpu
    }
}

/// Logical CPUs of the calling thread's processor group (all of them up to 64).
const MAX_CPUS: usize = 64;

pub fn read_times() -> Option<Vec<Times>> {
    let mut buf =
        [ProcessorTimes { IdleTime: 0, KernelTime: 0, UserTime: 0, Reserved1: [0; 2], Reserved2: 0 }; MAX_CPUS];
    let mut len = 0u32;
    let size = u32::try_from(std::mem::size_of_val(&buf)).ok()?;
    // SAFETY: the buffer is writable for `size` bytes and `len` is a valid out pointer.
    let status = unsafe {
        NtQuerySystemInformation(SystemProcessorPerformanceInformation, buf.as_mut_ptr().cast(), size, &mut len)
    };
    if status < 0 {
        return None;
    }
    let n = (len as usize / std::mem::size_of::<ProcessorTimes>()).min(MAX_CPUS);
    let times = buf[..n]
        .iter()
        .map(|p| Times {
            idle: u64::try_from(p.IdleTime).unwrap_or(0),
            total: u64::try_from(p.KernelTime).unwrap_or(0).saturating_add(u64::try_from(p.UserTime).unwrap_or(0)),
        })
        .collect();
    Some(times)
}

/// Busy share of each CPU and of all together between two readings, as the
/// snapshot rounds it. `None` when the CPU count differs or is zero.
pub fn usage(before: &[Times], now: &[Times]) -> Option<Cpu> {
    if before.len() != now.len() {
        return None;
    }
    let (mut idle, mut total) = (0u64, 0u64);
    let cores: Vec<f32> = before
        .iter()
        .zip(now)
        .map(|(b, n)| {
            let di = n.idle.saturating_sub(b.idle);
            let dt = n.total.saturating_sub(b.total);
            idle = idle.saturating_add(di);
            total = total.saturating_add(dt);
            busy_percent(di, dt)
        })
        .collect();
    super::super::cpu::build(busy_percent(idle, total), &cores)
}

/// (total − idle) / total × 100; 0 when no time passed.
fn busy_percent(idle: u64, total: u64) -> f32 {
    if total == 0 {
        return 0.0;
    }
    (total.saturating_sub(idle) as f64 / total as f64 * 100.0) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(idle: u64, total: u64) -> Times {
        Times { idle, total }
    }

    #[test]
    fn usage_table() {
        // Two CPUs: one 25 % busy, one idle; together 12.5 % → 12.5.
        let cpu = usage(&[t(0, 0), t(0, 0)], &[t(750, 1000), t(1000, 1000)]).expect("cpu");
        assert_eq!(cpu.per_core_percent, [25.0, 0.0]);
        assert_eq!(cpu.total_percent, 12.5);
        // No time passed: 0 %, not NaN.
        let still = usage(&[t(5, 10)], &[t(5, 10)]).expect("cpu");
        assert_eq!((still.total_percent, still.per_core_percent), (0.0, vec![0.0]));
        // Idle above total (a torn reading) cannot go negative.
        assert_eq!(usage(&[t(0, 0)], &[t(20, 10)]).map(|c| c.total_percent), Some(0.0));
        // A counter that went backwards counts as no time.
        assert_eq!(usage(&[t(100, 200)], &[t(50, 100)]).map(|c| c.total_percent), Some(0.0));
        // CPU count changed, or no CPUs.
        assert_eq!(usage(&[t(0, 0)], &[t(0, 0), t(0, 0)]), None);
        assert_eq!(usage(&[], &[]), None);
    }

    #[test]
    fn reads_every_cpu() {
        let times = read_times().expect("processor times");
        assert_eq!(times.len(), std::thread::available_parallelism().map_or(0, |n| n.get()).min(MAX_CPUS));
        assert!(times.iter().all(|c| c.total >= c.idle), "{times:?}");
    }
}
