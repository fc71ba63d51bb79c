//! What the machine is (hostname, OS, kernel, architecture, board model) and how
//! many processes run. Thin reads of small files; the parsing is pure.

use super::read_trimmed;
use std::path::Path;

use crate::snapshot::Host;

/// `procfs` and `sysfs` as configured; `rootfs` is `/` except in tests.
pub fn read(procfs: &Path, sysfs: &Path, rootfs: &Path) -> Host {
    let os = std::fs::read_to_string(rootfs.join("etc/os-release"))
        .ok()
        .and_then(|t| shell_value(&t, "PRETTY_NAME"))
        .or_else(|| {
            std::fs::read_to_string(rootfs.join("etc/openwrt_release"))
                .ok()
                .and_then(|t| shell_value(&t, "DISTRIB_DESCRIPTION"))
        });
    let model = read_trimmed(&procfs.join("device-tree/model"))
        .or_else(|| read_trimmed(&rootfs.join("tmp/sysinfo/model")))
        .or_else(|| read_trimmed(&sysfs.join("class/dmi/id/product_name")));
    let uname = rustix::system::uname();
    Host {
        hostname: read_trimmed(&procfs.join("sys/kernel/hostname")),
        os,
        kernel: read_trimmed(&procfs.join("sys/kernel/osrelease")),
        arch: uname.machine().to_str().ok().map(str::to_owned),
        model,
    }
}

/// The value of `KEY=value`, `KEY="value"` or `KEY='value'` in an os-release style file.
pub fn shell_value(text: &str, key: &str) -> Option<String> {
    let line = text.lines().find_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))?;
    let v = line.trim();
    let v = v
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
        .unwrap_or(v);
    (!v.is_empty()).then(|| v.to_owned())
}

/// Counts the numeric entries of `procfs` (one per process), without reading them.
pub fn count_processes(procfs: &Path) -> Option<u64> {
    let entries = std::fs::read_dir(procfs).ok()?;
    let n = entries.flatten().filter(|e| e.file_name().as_encoded_bytes().iter().all(u8::is_ascii_digit)).count();
    Some(n as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_value_table() {
        let os_release = "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n";
        assert_eq!(shell_value(os_release, "PRETTY_NAME").as_deref(), Some("Debian GNU/Linux 12 (bookworm)"));
        assert_eq!(shell_value(os_release, "ID").as_deref(), Some("debian"));
        assert_eq!(shell_value(os_release, "NAME").as_deref(), Some("Debian GNU/Linux"));
        let openwrt = "DISTRIB_ID='OpenWrt'\nDISTRIB_DESCRIPTION='OpenWrt 23.05.3 r23809-234f1a2efa'\n";
        assert_eq!(shell_value(openwrt, "DISTRIB_DESCRIPTION").as_deref(), Some("OpenWrt 23.05.3 r23809-234f1a2efa"));
        assert_eq!(shell_value("PRETTY_NAME=\n", "PRETTY_NAME"), None);
        assert_eq!(shell_value("", "PRETTY_NAME"), None);
    }
}
