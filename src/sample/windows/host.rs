//! What the machine is, on Windows: hostname, Windows version and build, and CPU
//! architecture from sysinfo (which answers correctly under wine too), and the
//! number of processes from `K32EnumProcesses`.

use windows_sys::Win32::System::ProcessStatus::K32EnumProcesses;

use crate::snapshot::Host;

pub fn read() -> Host {
    Host {
        hostname: sysinfo::System::host_name().ok(),
        os: sysinfo::System::long_os_version().ok(),
        kernel: sysinfo::System::kernel_version().ok(),
        arch: Some(sysinfo::System::cpu_arch()).filter(|a| !a.is_empty()),
        model: None,
    }
}

/// The number of processes; `None` when they cannot be listed.
pub fn count_processes() -> Option<u64> {
    // The buffer grows until the list fits with room to spare (the call cannot
    // say that it was cut short otherwise).
    let mut ids = vec![0u32; 1024];
    loop {
        let size = u32::try_from(std::mem::size_of_val(ids.as_slice())).ok()?;
        let mut used = 0u32;
        // SAFETY: `ids` is writable for `size` bytes and `used` is a valid out pointer.
        if unsafe { K32EnumProcesses(ids.as_mut_ptr(), size, &mut used) } == 0 {
            return None;
        }
        if used < size {
            return Some(u64::from(used) / 4);
        }
        ids.resize(ids.len() * 2, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_processes_including_this_one() {
        assert!(count_processes().is_some_and(|n| n >= 1));
    }
}
