//! Disks on Windows: one entry per drive letter, as the seed reports them (`name`
//! and `mount` are `C:\`, `filesystem` is `NTFS`), with df-like usage from
//! `GetDiskFreeSpaceExW`. (Why not sysinfo: see the parent module.)
//!
//! `drives` lists the letters (`GetLogicalDrives`), keeps fixed, removable, network
//! and RAM drives (no CD/DVD drives, as the Linux default drops iso9660) that have a
//! volume in them, and applies `--exclude-fs`/`--exclude-mount` through the shared
//! `disk::select`, with the volume serial number as the device (a volume that has
//! two letters is listed once). The figures are read by the shared `DiskReader`
//! with `statvfs` below, so a network drive that hangs costs one timeout, as a dead
//! NFS mount does on Linux.

use std::io;
use std::path::Path;

use windows_sys::Win32::Storage::FileSystem::{
    GetDiskFreeSpaceExW, GetDriveTypeW, GetLogicalDrives, GetVolumeInformationW,
};

use crate::sample::disk::{select, DiskFilter, FsInfo, FsStats, Mount};

// GetDriveTypeW's answers (winbase.h).
const DRIVE_REMOVABLE: u32 = 2;
const DRIVE_FIXED: u32 = 3;
const DRIVE_REMOTE: u32 = 4;
const DRIVE_RAMDISK: u32 = 6;
/// GetVolumeInformationW's flag for a read-only volume (winnt.h).
const FILE_READ_ONLY_VOLUME: u32 = 0x0008_0000;

/// The listed drives, sorted by letter.
pub fn drives(filter: &DiskFilter) -> Vec<Mount> {
    // SAFETY: no arguments.
    let letters = unsafe { GetLogicalDrives() };
    let mounts = roots(letters)
        .filter(|root| {
            let w = super::wide(root);
            // SAFETY: `w` is NUL-terminated.
            let kind = unsafe { GetDriveTypeW(w.as_ptr()) };
            matches!(kind, DRIVE_REMOVABLE | DRIVE_FIXED | DRIVE_REMOTE | DRIVE_RAMDISK)
        })
        .filter_map(|root| {
            let v = volume(&root)?;
            Some(Mount {
                dev: u64::from(v.serial),
                whole: true,
                path: root.clone().into(),
                source: root.clone(),
                mount: root,
                fstype: v.filesystem,
                read_only: v.read_only,
            })
        })
        .collect();
    select(mounts, filter)
}

/// `A:\` .. `Z:\` for the bits set in GetLogicalDrives' mask.
pub fn roots(mask: u32) -> impl Iterator<Item = String> {
    (0..26u8).filter(move |i| mask & (1 << i) != 0).map(|i| format!("{}:\\", char::from(b'A' + i)))
}

/// What GetVolumeInformationW says of a drive; `None` when no volume is in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub serial: u32,
    pub filesystem: String,
    pub read_only: bool,
}

pub fn volume(root: &str) -> Option<Volume> {
    let w = super::wide(root);
    let mut serial = 0u32;
    let mut flags = 0u32;
    let mut fs = [0u16; 64];
    // SAFETY: `w` is NUL-terminated, the out pointers are valid, `fs` holds 64 units.
    let ok = unsafe {
        GetVolumeInformationW(
            w.as_ptr(),
            std::ptr::null_mut(),
            0,
            &mut serial,
            std::ptr::null_mut(),
            &mut flags,
            fs.as_mut_ptr(),
            fs.len() as u32,
        )
    };
    (ok != 0).then(|| Volume {
        serial,
        filesystem: super::from_wide(&fs),
        read_only: flags & FILE_READ_ONLY_VOLUME != 0,
    })
}

/// The `disk::StatFn` of Windows: bytes free to this user, total and free bytes
/// (so `frsize` is 1). No inode figures on Windows. (Read-only is the volume's
/// flag, read with the drive list, as Linux reads it from the mount table.)
pub fn statvfs(root: &Path) -> io::Result<FsInfo> {
    let root = root.to_str().ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    let w = super::wide(root);
    let (mut avail, mut total, mut free) = (0u64, 0u64, 0u64);
    // SAFETY: `w` is NUL-terminated and the out pointers are valid.
    if unsafe { GetDiskFreeSpaceExW(w.as_ptr(), &mut avail, &mut total, &mut free) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(FsInfo { stats: FsStats { blocks: total, bfree: free, bavail: avail, frsize: 1 }, files: 0, ffree: 0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_from_mask() {
        assert_eq!(roots(0).count(), 0);
        assert_eq!(roots(0b100).collect::<Vec<_>>(), ["C:\\"]);
        assert_eq!(roots((1 << 2) | (1 << 3) | (1 << 25)).collect::<Vec<_>>(), ["C:\\", "D:\\", "Z:\\"]);
        assert_eq!(roots(u32::MAX).count(), 26);
    }

    #[test]
    fn drive_c_is_listed_with_its_filesystem() {
        let drives = drives(&DiskFilter::default());
        let c = drives.iter().find(|m| m.mount == "C:\\").expect("C:\\ is listed");
        assert_eq!(c.source, "C:\\");
        assert!(!c.fstype.is_empty());
        let info = statvfs(Path::new("C:\\")).expect("C:\\ answers");
        assert!(info.stats.blocks > 0 && info.stats.bavail <= info.stats.blocks, "{info:?}");
    }
}
