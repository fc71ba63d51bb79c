//! fluxstat's own resident memory (working set) and CPU time, on Windows.

use windows_sys::Win32::Foundation::FILETIME;
use windows_sys::Win32::System::ProcessStatus::{K32GetProcessMemoryInfo, PROCESS_MEMORY_COUNTERS};
use windows_sys::Win32::System::Threading::{GetCurrentProcess, GetProcessTimes};

/// The working set in bytes, Windows' resident set.
pub fn rss_bytes() -> Option<u64> {
    // SAFETY: all-zero is a valid PROCESS_MEMORY_COUNTERS.
    let mut c: PROCESS_MEMORY_COUNTERS = unsafe { std::mem::zeroed() };
    let size = u32::try_from(std::mem::size_of::<PROCESS_MEMORY_COUNTERS>()).ok()?;
    // SAFETY: the pseudo handle of this process; `c` is writable for `size` bytes.
    let ok = unsafe { K32GetProcessMemoryInfo(GetCurrentProcess(), &mut c, size) };
    (ok != 0).then_some(c.WorkingSetSize as u64)
}

/// CPU time (user + kernel) in milliseconds.
pub fn cpu_time_ms() -> Option<u64> {
    let zero = FILETIME { dwLowDateTime: 0, dwHighDateTime: 0 };
    let (mut created, mut exited, mut kernel, mut user) = (zero, zero, zero, zero);
    // SAFETY: the pseudo handle of this process and four valid out pointers.
    let ok = unsafe { GetProcessTimes(GetCurrentProcess(), &mut created, &mut exited, &mut kernel, &mut user) };
    (ok != 0).then(|| hundred_ns(kernel).saturating_add(hundred_ns(user)) / 10_000)
}

fn hundred_ns(t: FILETIME) -> u64 {
    (u64::from(t.dwHighDateTime) << 32) | u64::from(t.dwLowDateTime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        assert!(rss_bytes().is_some_and(|b| b > 0));
        assert!(cpu_time_ms().is_some());
        assert_eq!(hundred_ns(FILETIME { dwLowDateTime: 1, dwHighDateTime: 1 }), (1 << 32) + 1);
    }
}
