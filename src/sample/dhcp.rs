//! DHCP leases: how many clients hold an active lease, counted in dnsmasq's lease
//! files (`/tmp/dhcp.leases` on OpenWrt, `/var/lib/misc/dnsmasq.leases` on Debian
//! and Raspberry Pi OS, or the `--dhcp-leases` paths). Count only: nothing of a
//! line but its expiry is looked at, and no MAC address, name or IP address
//! leaves this module.
//!
//! A lease line is `<expiry> <mac> <ip> <name> <client-id>` (IPv6 leases:
//! `<expiry> <iaid> <ip> <name> <duid>`, after a `duid <server-duid>` line, which
//! is not a lease). It is active when its expiry (Unix seconds) is 0 (infinite)
//! or still ahead: dnsmasq rewrites the file on changes, not on expiry.
//! The family is `null` when none of the files exists. The files are read every
//! 10 s (a lease table moves slowly), each at most 1 MiB.

use std::path::{Path, PathBuf};

use super::fs;

/// The lease files dnsmasq writes on OpenWrt and on Debian, relative to `/`.
pub const DEFAULT_FILES: [&str; 2] = ["tmp/dhcp.leases", "var/lib/misc/dnsmasq.leases"];

/// The paths read: the user's, else the defaults under `rootfs`.
pub fn paths(given: &[PathBuf], rootfs: &Path) -> Vec<PathBuf> {
    if given.is_empty() {
        DEFAULT_FILES.iter().map(|f| rootfs.join(f)).collect()
    } else {
        given.to_vec()
    }
}

/// The active leases in all files that exist; `None` when none does.
pub fn read(paths: &[PathBuf], now_unix: u64) -> Option<u64> {
    let mut total = None;
    for p in paths {
        let mut n = 0;
        if fs::read_lines(p, 1024, 1 << 20, &mut |l| n += u64::from(is_active(l, now_unix))).is_ok() {
            *total.get_or_insert(0) += n;
        }
    }
    total
}

/// Whether a lease-file line is a lease still active at `now_unix`.
pub fn is_active(line: &[u8], now_unix: u64) -> bool {
    let first = line.split(|b| *b == b' ').next().unwrap_or_default();
    let Some(expiry) = std::str::from_utf8(first).ok().and_then(|s| s.parse::<u64>().ok()) else { return false };
    // A lease line has at least expiry, address/IAID and IP.
    line.split(|b| *b == b' ').filter(|f| !f.is_empty()).count() >= 3 && (expiry == 0 || expiry > now_unix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_lines_table() {
        let now = 1_764_480_000;
        let table: &[(&str, bool)] = &[
            ("1764520000 3c:22:fb:12:34:56 192.168.1.23 iPhone 01:3c:22:fb:12:34:56", true),
            ("0 b8:27:eb:00:00:01 192.168.1.2 printer *", true),
            ("1764470000 3c:22:fb:12:34:57 192.168.1.24 old *", false),
            ("1764480000 3c:22:fb:12:34:58 192.168.1.25 now *", false),
            ("duid 00:01:00:01:2c:1a:2b:3c:94:83:c4:01:02:03", false),
            ("1764520000 1234567 fd00::23 laptop 00:04:aa:bb", true),
            ("", false),
            ("1764520000", false),
            ("garbage here ok", false),
        ];
        for &(line, want) in table {
            assert_eq!(is_active(line.as_bytes(), now), want, "{line}");
        }
        assert_eq!(
            paths(&[], Path::new("/r")),
            [PathBuf::from("/r/tmp/dhcp.leases"), PathBuf::from("/r/var/lib/misc/dnsmasq.leases")]
        );
        assert_eq!(read(&[PathBuf::from("/nonexistent/leases")], now), None);
    }
}
