//! Whether the system asks for a reboot: Debian, Ubuntu and Raspberry Pi OS
//! create `/run/reboot-required` when an update (a kernel, libc) needs one.
//! `true` when the file exists; `false` when it does not on a Debian-family
//! system (`/etc/debian_version` exists); `null` elsewhere (OpenWrt, Alpine),
//! which has no such mechanism. Two `stat`s, read with the host facts every 60 s.

use std::path::Path;

pub fn read(rootfs: &Path) -> Option<bool> {
    decide(rootfs.join("run/reboot-required").exists(), rootfs.join("etc/debian_version").exists())
}

pub fn decide(flag: bool, debian: bool) -> Option<bool> {
    match (flag, debian) {
        (true, _) => Some(true),
        (false, true) => Some(false),
        (false, false) => None,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn decide_table() {
        assert_eq!(super::decide(true, true), Some(true));
        assert_eq!(super::decide(true, false), Some(true));
        assert_eq!(super::decide(false, true), Some(false));
        assert_eq!(super::decide(false, false), None);
    }
}
