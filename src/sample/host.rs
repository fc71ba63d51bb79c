//! What the machine is (hostname, OS, kernel, architecture, board model) and how
//! many processes run. Thin, bounded reads of small files; the parsing is pure.
//!
//! These reads run on the sampler thread, not under a deadline: procfs renders
//! from kernel memory, the device-tree and DMI files are tables in memory, and
//! `/etc` is on the root filesystem, without which nothing works anyway.

use super::files::{self, Miss, TABLE};
use super::fs::read_value as read_trimmed;
use std::path::{Path, PathBuf};

use crate::snapshot::Host;

/// `procfs` and `sysfs` as configured; `rootfs` is `/` except in tests.
pub fn read(procfs: &Path, sysfs: &Path, rootfs: &Path) -> Host {
    let table = |p: &str| files::read_bounded(&rootfs.join(p), TABLE).ok();
    let os = table("etc/os-release")
        .and_then(|t| shell_value(&t, "PRETTY_NAME"))
        .or_else(|| table("etc/openwrt_release").and_then(|t| shell_value(&t, "DISTRIB_DESCRIPTION")));
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

/// Counts the numeric entries of `procfs` (one per process), without reading
/// them. The directory stays open and is listed again from its start each time.
#[derive(Debug)]
pub struct ProcessCounter {
    procfs: PathBuf,
    dir: Option<rustix::fs::Dir>,
}

impl ProcessCounter {
    pub fn new(procfs: &Path) -> ProcessCounter {
        ProcessCounter { procfs: procfs.to_owned(), dir: None }
    }

    pub fn count(&mut self) -> Result<u64, Miss> {
        let r = self.list();
        if r.is_err() {
            self.dir = None;
        }
        r.map_err(|e| Miss::new(&self.procfs, e.into()))
    }

    fn list(&mut self) -> rustix::io::Result<u64> {
        use rustix::fs::{Mode, OFlags};
        let dir = match &mut self.dir {
            Some(d) => {
                d.rewind();
                d
            }
            None => {
                let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
                let fd = rustix::fs::open(&self.procfs, flags, Mode::empty())?;
                self.dir.insert(rustix::fs::Dir::new(fd)?)
            }
        };
        let mut n = 0;
        while let Some(entry) = dir.read() {
            if entry?.file_name().to_bytes().iter().all(u8::is_ascii_digit) {
                n += 1;
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_processes_again_from_the_start_of_the_directory() {
        let dir = std::env::temp_dir().join(format!("fluxstat-procs-{}", std::process::id()));
        for name in ["1", "22", "self", "333x"] {
            std::fs::create_dir_all(dir.join(name)).expect("temp dir");
        }
        let mut counter = ProcessCounter::new(&dir);
        assert_eq!(counter.count().ok(), Some(2));
        std::fs::create_dir_all(dir.join("4444")).expect("temp dir");
        assert_eq!(counter.count().ok(), Some(3));
        let _ = std::fs::remove_dir_all(&dir);
        let mut missing = ProcessCounter::new(&dir);
        assert!(missing.count().is_err());
    }

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
