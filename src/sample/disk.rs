//! Disks: which mounted filesystems are listed, and their df-style usage.
//!
//! `read` touches the OS (`/proc/self/mountinfo`, statvfs); everything else is a
//! pure function over plain values and is tested with literal tables.
//!
//! Which mounts are listed (README, "Disk"):
//! 1. A mount point mounted over is represented by its top (last) mount only.
//! 2. Mounts whose filesystem type or mount point matches an exclusion pattern are
//!    dropped. The defaults follow node_exporter: pseudo and virtual filesystems,
//!    overlay/squashfs layers, and anything under /dev, /proc, /sys, the tmpfs
//!    mounts under /run, and container storage.
//! 3. A filesystem mounted several times (bind mounts, btrfs subvolumes of one
//!    device number) is listed once: the mount of its root, else the shortest path.
//! 4. Filesystems that report zero blocks (df hides them too) are dropped, and so
//!    are mounts whose statvfs fails (permission denied, stale).
//! 5. The rest is sorted by mount point (bytes), so `disk_N` is stable between
//!    samples.
//!
//! On procfs, mountinfo is kept open and read again only when the kernel flags a
//! change of the mount table (`MountTable`); the selected mounts are reused
//! meanwhile, and statvfs asks them every sample. It is streamed line by line (a
//! line over 64 KiB is skipped, the table is capped at 64 MiB); each mount point,
//! source and type is decoded on its own (`fs::decode`), so one name that is not
//! UTF-8 never hides the other mounts, and statvfs is called on the mount point's
//! original bytes. Steps 1–5 are sorts of indices, O(n log n) in the number of
//! mounts (10,000 on a container host).

use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::{fs, names};
use crate::glob::GlobList;
use crate::snapshot::{Disk, DiskUsage, Inodes};

/// The longest mountinfo line read: two paths of PATH_MAX, each byte escaped as
/// `\ooo` at worst, plus options. Longer lines are skipped.
const MAX_LINE: usize = 64 * 1024;
/// The most of mountinfo read: some 400,000 mounts (10,000 take 1.3 MB).
const MAX_TABLE: u64 = 64 * 1024 * 1024;

/// Filesystem types excluded by default (node_exporter's list plus a few kin).
pub const DEFAULT_EXCLUDE_FS: &str = "autofs,binfmt_misc,bpf,cgroup,cgroup2,configfs,debugfs,\
devpts,devtmpfs,efivarfs,erofs,fuse.lxcfs,fuse.portal,fusectl,hugetlbfs,iso9660,mqueue,nsfs,\
overlay,proc,procfs,pstore,ramfs,rpc_pipefs,securityfs,selinuxfs,squashfs,sysfs,tracefs";

/// Mount points excluded by default: kernel and device trees, the tmpfs mounts
/// systemd puts under /run (but not /run/media, where desktops mount USB disks),
/// and container storage.
pub const DEFAULT_EXCLUDE_MOUNT: &str = "/dev,/dev/*,/proc,/proc/*,/sys,/sys/*,/run,/run/lock,\
/run/user/*,/run/credentials/*,/run/snapd/*,/run/netns/*,/run/docker/*,/var/lib/docker/*,\
/var/lib/containers/storage/*,/var/lib/kubelet/*";

/// Which mounts to leave out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskFilter {
    pub exclude_fs: GlobList,
    pub exclude_mount: GlobList,
}

impl Default for DiskFilter {
    fn default() -> Self {
        DiskFilter {
            // This platform's (`sample` picks them).
            exclude_fs: GlobList::parse(super::DEFAULT_EXCLUDE_FS),
            exclude_mount: GlobList::parse(super::DEFAULT_EXCLUDE_MOUNT),
        }
    }
}

impl DiskFilter {
    /// Patterns match the decoded names, as the document shows them.
    fn keeps(&self, m: &Mount) -> bool {
        !self.exclude_fs.matches(&m.fstype) && !self.exclude_mount.matches(&m.mount)
    }
}

/// One line of /proc/self/mountinfo, the fields fluxstat uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// `major:minor` of the filesystem as one number: equal for bind mounts of one
    /// filesystem.
    pub dev: u64,
    /// Whether this mounts the filesystem's root (`/`), not a directory inside it.
    pub whole: bool,
    /// The mount point as the kernel has it, octal escapes undone: statvfs is
    /// called on these bytes, whatever they are.
    pub path: PathBuf,
    /// The mount point decoded (`fs::decode`), for the document and the filters.
    pub mount: String,
    pub fstype: String,
    pub source: String,
    /// The filesystem itself is read-only: `ro` among the superblock's options (the
    /// last field), as after `mount -o ro` or a kernel's remount-ro on errors. A
    /// read-only view of a writable filesystem (a read-only bind mount, systemd's
    /// `ProtectSystem=`) does not count: that is this process's view, not the disk.
    pub read_only: bool,
}

/// The statvfs numbers usage is computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsStats {
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub frsize: u64,
}

/// What statvfs says of one mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsInfo {
    pub stats: FsStats,
    pub files: u64,
    pub ffree: u64,
}

/// The statvfs call; replaceable so tests can simulate a filesystem that hangs.
pub type StatFn = fn(&Path) -> io::Result<FsInfo>;

/// Windows' equivalent, by drive letter (`C:\`).
#[cfg(windows)]
pub use super::windows::disk::statvfs;

#[cfg(not(windows))]
pub fn statvfs(path: &Path) -> io::Result<FsInfo> {
    let st = rustix::fs::statvfs(path)?;
    Ok(FsInfo {
        stats: FsStats { blocks: st.f_blocks, bfree: st.f_bfree, bavail: st.f_bavail, frsize: st.f_frsize },
        files: st.f_files,
        ffree: st.f_ffree,
    })
}

/// Reads disks so that a mount whose statvfs never returns (a dead NFS server)
/// cannot stop the sampler, and a slow sample never blames a healthy filesystem.
///
/// statvfs runs on a worker thread, which asks the sample's mounts one after the
/// other and wakes the sampler once, when it is done. The deadline is per call: a
/// mount whose own statvfs has run longer than `timeout` did not answer. It is
/// remembered and reported with `usage: null` until its call returns; the worker
/// is abandoned (it exits once that call returns) and a new one asks the mounts
/// after it. At most one thread is parked per stuck mount. Each mount that newly
/// stops answering costs one sample one `timeout`; a mount already known to be
/// stuck costs nothing.
///
/// Per sample the hand-off costs one wake of the worker and at most one of the
/// sampler: the worker is notified, and notifies back once the batch is done,
/// each with the lock released (woken while the other still holds it, a thread
/// would run only to block on the mutex). The sampler's wait also ends when the
/// call in progress overruns `timeout`.
///
/// Why statvfs does not run on `worker::Worker`, the sensors' timer-driven
/// worker: that worker's job is all-or-nothing (a result, or `Late` for the whole
/// run), whereas here a mount that hangs must be named, its answered neighbours
/// kept, and the mounts after it asked in the *same* sample by a fresh thread.
/// Doing that there would mean partial results, the mount in progress and a
/// restart with the rest inside `Worker`'s exchange: two protocols in one type
/// for a saving of about one wake-up a second (BENCHMARKS.md, "Idle").
pub struct DiskReader {
    stat: StatFn,
    timeout: Duration,
    worker: Option<Worker>,
    /// Mounts whose statvfs did not return, with the abandoned worker stuck in it.
    stuck: Vec<(PathBuf, Arc<Shared>)>,
    /// The kept-open mount table of a real procfs and the mounts last selected.
    table: Option<MountTable>,
    /// How many times the mount table was read and its mounts selected.
    table_reads: u64,
}

/// `/proc/self/mountinfo` kept open, and the mounts selected from it. The kernel
/// marks the open file when the mount table changes (proc(5): `poll` reports
/// `POLLPRI | POLLERR`), so the table is read and the mounts selected again only
/// then; statvfs still asks every listed mount every sample. Only a file on a
/// real procfs (`fstatfs` says `PROC_SUPER_MAGIC`, checked once at open) is
/// watched: a regular file in a `--procfs` fixture tree never signals, and is
/// read afresh every sample.
struct MountTable {
    procfs: PathBuf,
    file: File,
    /// The filter and the mounts it selected, as of the last change seen.
    selected: Option<(DiskFilter, Vec<Mount>)>,
}

impl MountTable {
    /// Opens the table; `None` when it is not on a real procfs.
    fn open(procfs: &Path) -> io::Result<Option<MountTable>> {
        let file = fs::open(&procfs.join("self/mountinfo"))?;
        let on_procfs = fs::on_procfs(&file);
        Ok(on_procfs.then(|| MountTable { procfs: procfs.to_owned(), file, selected: None }))
    }

    /// Whether the mount table changed since the last call (or the open); an
    /// error counts as a change.
    fn changed(&self) -> bool {
        fs::flagged(&self.file)
    }

    /// The whole table again, from the start.
    fn read(&self) -> io::Result<Vec<Mount>> {
        let mut mounts = Vec::new();
        let mut file = &self.file;
        file.seek(SeekFrom::Start(0))?;
        fs::for_each_line(&mut file, MAX_LINE, MAX_TABLE, &mut |line| mounts.extend(parse_line(line)))?;
        Ok(mounts)
    }
}

/// A statvfs thread and the exchange it shares with the sampler: one mutex and
/// two condition variables rather than two channels, which cost several KiB of
/// code per message type.
struct Worker {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<Exchange>,
    job_ready: Condvar,
    batch_done: Condvar,
}

#[derive(Default)]
struct Exchange {
    /// Mounts still to ask, by their index in the sample, the next one last.
    jobs: Vec<(usize, PathBuf)>,
    /// Answers so far, by index.
    results: Vec<(usize, io::Result<FsInfo>)>,
    /// The call in progress: the mount's index and when the call began.
    current: Option<(usize, Instant)>,
    /// Set when the sampler gives the worker up: it exits after its current call.
    abandoned: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Exchange> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The worker thread: asks one mount at a time until abandoned.
    fn serve(&self, stat: StatFn) {
        let mut ex = self.lock();
        loop {
            if ex.abandoned {
                return;
            }
            let Some((index, path)) = ex.jobs.pop() else {
                ex = self.job_ready.wait(ex).unwrap_or_else(PoisonError::into_inner);
                continue;
            };
            ex.current = Some((index, Instant::now()));
            drop(ex);
            let r = stat(&path);
            ex = self.lock();
            ex.current = None;
            ex.results.push((index, r));
            if ex.jobs.is_empty() {
                // Notified once the lock is released, so that the sampler, woken,
                // does not block on the mutex this thread still holds.
                drop(ex);
                self.batch_done.notify_one();
                ex = self.lock();
            }
        }
    }

    /// Whether an abandoned worker's call has returned.
    fn returned(&self) -> bool {
        self.lock().current.is_none()
    }
}

impl Worker {
    fn spawn(stat: StatFn) -> Option<Worker> {
        let shared = Arc::new(Shared::default());
        let theirs = Arc::clone(&shared);
        std::thread::Builder::new().name("statvfs".into()).spawn(move || theirs.serve(stat)).ok()?;
        Some(Worker { shared })
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.shared.lock().abandoned = true;
        self.shared.job_ready.notify_one();
    }
}

impl DiskReader {
    pub fn new(timeout: Duration) -> DiskReader {
        DiskReader::with_stat(statvfs, timeout)
    }

    pub fn with_stat(stat: StatFn, timeout: Duration) -> DiskReader {
        DiskReader { stat, timeout, worker: None, stuck: Vec::new(), table: None, table_reads: 0 }
    }

    /// Reads the mount table (on procfs, only when it changed) and the figures of
    /// every listed mount. `None` when the mount table itself cannot be read; a
    /// mount whose statvfs fails is skipped.
    pub fn read(&mut self, procfs: &Path, filter: &DiskFilter) -> Option<Vec<Disk>> {
        if self.table.as_ref().is_some_and(|t| t.procfs != procfs) {
            self.table = None;
        }
        if self.table.is_none() {
            self.table = MountTable::open(procfs).ok().flatten();
        }
        let Some(table) = &mut self.table else {
            // Not procfs (a fixture tree), or not readable: read afresh every sample.
            let mut mounts = Vec::new();
            fs::read_lines(&procfs.join("self/mountinfo"), MAX_LINE, MAX_TABLE, &mut |line| {
                mounts.extend(parse_line(line))
            })
            .ok()?;
            self.table_reads += 1;
            return Some(self.read_mounts(select(mounts, filter)));
        };
        let fresh = matches!(&table.selected, Some((f, _)) if f == filter);
        // `changed` also takes the mark, so a change after it is seen next sample.
        if !fresh || table.changed() {
            table.selected = None;
            self.table_reads += 1;
            match table.read() {
                Ok(mounts) => table.selected = Some((filter.clone(), select(mounts, filter))),
                Err(_) => {
                    // Opened again next sample.
                    self.table = None;
                    return None;
                }
            }
        }
        let mounts = self.table.as_mut().and_then(|t| t.selected.take());
        let (filter, mounts) = mounts?;
        let disks = self.disks_of(&mounts);
        if let Some(t) = &mut self.table {
            t.selected = Some((filter, mounts));
        }
        Some(disks)
    }

    /// How many times the mount table was read (and its mounts selected).
    pub fn table_reads(&self) -> u64 {
        self.table_reads
    }

    pub fn read_mounts(&mut self, mounts: Vec<Mount>) -> Vec<Disk> {
        self.disks_of(&mounts)
    }

    fn disks_of(&mut self, mounts: &[Mount]) -> Vec<Disk> {
        let infos = self.stat_all(mounts);
        let mut disks = Vec::with_capacity(mounts.len());
        disks.extend(mounts.iter().zip(infos).filter_map(|(m, info)| {
            let (usage, read_only, inodes) = match info {
                Answer::Ok(i) if i.stats.blocks == 0 => return None,
                Answer::Ok(i) => (
                    Some(usage(i.stats)),
                    Some(m.read_only),
                    (i.files > 0).then_some(Inodes { total: i.files, free: i.ffree.min(i.files) }),
                ),
                Answer::Failed => return None,
                Answer::Silent => (None, None, None),
            };
            Some(Disk {
                name: m.source.clone(),
                mount: m.mount.clone(),
                filesystem: m.fstype.clone(),
                usage,
                read_only,
                inodes,
            })
        }));
        disks
    }

    fn stat_all(&mut self, mounts: &[Mount]) -> Vec<Answer> {
        let mut answers: Vec<Answer> = vec![Answer::Silent; mounts.len()];
        self.stuck.retain(|(_, worker)| !worker.returned());
        let stuck = &self.stuck;
        let mut jobs: Vec<(usize, PathBuf)> = Vec::with_capacity(mounts.len());
        jobs.extend(
            (0..mounts.len())
                .rev()
                .filter(|&i| !stuck.iter().any(|(p, _)| p.as_os_str() == mounts[i].path.as_os_str()))
                .map(|i| (i, mounts[i].path.clone())),
        );
        while !jobs.is_empty() {
            if self.worker.is_none() {
                self.worker = Worker::spawn(self.stat);
            }
            let Some(worker) = &self.worker else { break };
            let shared = Arc::clone(&worker.shared);
            let mut ex = shared.lock();
            ex.results.clear();
            // Reserved here, so that the worker's pushes never allocate and its
            // thread needs no malloc arena of its own.
            ex.results.reserve(jobs.len());
            ex.jobs = std::mem::take(&mut jobs);
            // The worker is woken with the lock released: woken while it is held,
            // it would wake only to block on the mutex (one more switch each way).
            drop(ex);
            shared.job_ready.notify_one();
            ex = shared.lock();
            loop {
                let wait = match ex.current {
                    _ if ex.jobs.is_empty() && ex.current.is_none() => break,
                    Some((index, since)) if since.elapsed() >= self.timeout => {
                        let path = &mounts[index].path;
                        crate::warn!(
                            "statvfs of {} did not answer within {} ms; reporting it unavailable",
                            mounts[index].mount,
                            self.timeout.as_millis()
                        );
                        self.stuck.push((path.clone(), Arc::clone(&shared)));
                        jobs = std::mem::take(&mut ex.jobs);
                        break;
                    }
                    Some((_, since)) => self.timeout.saturating_sub(since.elapsed()),
                    None => self.timeout,
                };
                ex = shared.batch_done.wait_timeout(ex, wait).unwrap_or_else(PoisonError::into_inner).0;
            }
            for (i, r) in ex.results.drain(..) {
                answers[i] = match r {
                    Ok(info) => Answer::Ok(info),
                    Err(_) => Answer::Failed,
                };
            }
            if !jobs.is_empty() || ex.current.is_some() {
                // Stuck: give this worker up; a new one asks the rest.
                drop(ex);
                self.worker = None;
            }
        }
        answers
    }
}

#[derive(Debug, Clone, Copy)]
enum Answer {
    Ok(FsInfo),
    Failed,
    Silent,
}

/// df's definitions: total = f_blocks×f_frsize, free = f_bavail×f_frsize (what an
/// unprivileged user can still write), used = (f_blocks − f_bfree)×f_frsize.
/// Saturating, so a corrupt statvfs can never wrap into a huge number.
pub fn usage(st: FsStats) -> DiskUsage {
    DiskUsage {
        total: st.blocks.saturating_mul(st.frsize),
        free: st.bavail.saturating_mul(st.frsize),
        used: st.blocks.saturating_sub(st.bfree).saturating_mul(st.frsize),
    }
}

/// Parses /proc/self/mountinfo (proc(5)); malformed lines are skipped.
pub fn parse_mountinfo(table: &[u8]) -> Vec<Mount> {
    table.split(|&b| b == b'\n').filter_map(parse_line).collect()
}

/// One mountinfo line. Fields are separated by single spaces; the kernel escapes
/// space, tab, newline and backslash inside them as `\ooo`; any other byte is
/// raw and need not be UTF-8.
pub fn parse_line(line: &[u8]) -> Option<Mount> {
    // 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
    let mut f = line.split(|&b| b == b' ');
    let (_id, _parent) = (f.next()?, f.next()?);
    let dev = parse_dev(f.next()?)?;
    let root = f.next()?;
    let path = unescape(f.next()?);
    // Mount options, optional fields, then the separator.
    f.by_ref().find(|field| *field == b"-")?;
    let fstype = f.next()?;
    let source = f.next()?;
    let read_only = f.next().is_some_and(|options| options.split(|&b| b == b',').any(|o| o == b"ro"));
    Some(Mount {
        dev,
        whole: root == b"/",
        mount: fs::decode(&path),
        path: fs::os_path(path),
        fstype: fs::decode(&unescape(fstype)),
        source: fs::decode(&unescape(source)),
        read_only,
    })
}

/// `major:minor` as one number.
fn parse_dev(field: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(field).ok()?;
    let (major, minor) = s.split_once(':')?;
    Some((major.parse::<u64>().ok()? << 32) | minor.parse::<u32>().ok().map(u64::from)?)
}

/// Undoes the kernel's octal escapes (`\040` for space, `\011`, `\012`, `\134`).
fn unescape(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b.get(i + 1..i + 4).filter(|d| b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                let v = u32::from(d[0] - b'0') * 64 + u32::from(d[1] - b'0') * 8 + u32::from(d[2] - b'0');
                out.push(u8::try_from(v).unwrap_or(b'?'));
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    out
}

/// Steps 1–3 and 5 of the module doc: which mounts are listed, in which order.
/// Three sorts of indices, so the cost is O(n log n) in the number of mounts.
pub fn select(mounts: Vec<Mount>, filter: &DiskFilter) -> Vec<Mount> {
    fn bytes(m: &Mount) -> &[u8] {
        m.path.as_os_str().as_encoded_bytes()
    }
    // 1. Keep only the top mount of each mount point (later lines are on top),
    // 2. and only those the filters keep.
    let by_path = names::sorted_indices(mounts.len(), &|a, b| bytes(&mounts[a]).cmp(bytes(&mounts[b])));
    let mut keep = vec![false; mounts.len()];
    for (k, &i) in by_path.iter().enumerate() {
        let top = by_path.get(k + 1).is_none_or(|&next| bytes(&mounts[next]) != bytes(&mounts[i]));
        keep[i] = top && filter.keeps(&mounts[i]);
    }
    // 3. One entry per filesystem: prefer the mount of its root, then the shortest path.
    let kept: Vec<usize> = (0..mounts.len()).filter(|&i| keep[i]).collect();
    let rank = |m: &Mount| (m.dev, !m.whole, bytes(m).len());
    let by_dev = names::sorted_indices(kept.len(), &|a, b| {
        let (x, y) = (&mounts[kept[a]], &mounts[kept[b]]);
        rank(x).cmp(&rank(y)).then_with(|| bytes(x).cmp(bytes(y)))
    });
    keep.fill(false);
    let mut previous: Option<u64> = None;
    for k in by_dev {
        let m = &mounts[kept[k]];
        if previous != Some(m.dev) {
            keep[kept[k]] = true;
            previous = Some(m.dev);
        }
    }
    // 5. Stable order: by mount point, the order step 1 already sorted them in.
    let mut slots: Vec<Option<Mount>> = mounts.into_iter().map(Some).collect();
    let mut chosen: Vec<Mount> = Vec::with_capacity(keep.iter().filter(|&&k| k).count());
    chosen.extend(by_path.into_iter().filter(|&i| keep[i]).filter_map(|i| slots[i].take()));
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    const DESKTOP: &str = "\
22 1 8:2 / / rw,relatime shared:1 - ext4 /dev/sda2 rw,errors=remount-ro
23 22 0:21 / /proc rw,nosuid shared:12 - proc proc rw
24 22 0:22 / /sys rw,nosuid shared:2 - sysfs sysfs rw
25 22 0:5 / /dev rw,nosuid shared:8 - devtmpfs udev rw,size=8000k
26 25 0:23 / /dev/pts rw,nosuid shared:9 - devpts devpts rw
27 22 0:24 / /run rw,nosuid shared:10 - tmpfs tmpfs rw,size=1600k
28 24 0:26 / /sys/fs/cgroup rw shared:4 - cgroup2 cgroup2 rw
29 27 0:27 / /run/lock rw shared:11 - tmpfs tmpfs rw
30 22 8:1 / /boot/efi rw,relatime shared:30 - vfat /dev/sda1 rw
31 22 8:3 / /home rw,relatime shared:31 - ext4 /dev/sda3 rw
32 22 0:40 / /tmp rw shared:32 - tmpfs tmpfs rw
33 22 8:3 /alice/share /srv/share rw,relatime shared:31 - ext4 /dev/sda3 rw
34 27 0:50 / /run/user/1000 rw shared:40 - tmpfs tmpfs rw
35 27 8:17 / /run/media/alice/USB\\040STICK rw shared:41 - vfat /dev/sdb1 rw
36 22 7:0 / /snap/core/1 ro shared:42 - squashfs /dev/loop0 ro
37 22 0:60 / /var/lib/docker/overlay2/abc/merged rw - overlay overlay rw
";

    fn mounts_of(table: &str, filter: &DiskFilter) -> Vec<String> {
        select(parse_mountinfo(table.as_bytes()), filter).into_iter().map(|m| m.mount).collect()
    }

    #[test]
    fn default_filter_keeps_real_filesystems_once_in_order() {
        assert_eq!(
            mounts_of(DESKTOP, &DiskFilter::default()),
            ["/", "/boot/efi", "/home", "/run/media/alice/USB STICK", "/tmp"]
        );
    }

    #[test]
    fn filters_are_overridable() {
        let none = DiskFilter { exclude_fs: GlobList::default(), exclude_mount: GlobList::default() };
        let all = mounts_of(DESKTOP, &none);
        assert!(all.contains(&"/proc".to_owned()) && all.contains(&"/run/lock".to_owned()));
        // /srv/share is a bind mount of /home's filesystem: listed once, as /home.
        assert!(!all.contains(&"/srv/share".to_owned()));
        let only_ext4 = DiskFilter {
            exclude_fs: GlobList::parse("tmpfs,vfat,proc,sysfs,devtmpfs,devpts,cgroup*,squashfs,overlay"),
            exclude_mount: GlobList::default(),
        };
        assert_eq!(mounts_of(DESKTOP, &only_ext4), ["/", "/home"]);
    }

    #[test]
    fn bind_mount_alone_is_listed_under_its_own_path() {
        let table = "33 22 8:3 /alice/share /srv/share rw - ext4 /dev/sda3 rw\n";
        assert_eq!(mounts_of(table, &DiskFilter::default()), ["/srv/share"]);
    }

    #[test]
    fn overmounted_mount_point_shows_the_top_filesystem() {
        let table = "\
40 22 8:5 / /data rw - ext4 /dev/sdc1 rw
41 22 8:6 / /data rw - xfs /dev/sdd1 rw
";
        let got = select(parse_mountinfo(table.as_bytes()), &DiskFilter::default());
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].fstype.as_str(), got[0].source.as_str()), ("xfs", "/dev/sdd1"));
    }

    // A read-only view of a writable filesystem (systemd's ProtectSystem=strict
    // remounts / read-only for the service: statvfs then says ST_RDONLY for every
    // disk) is not a read-only disk; a filesystem the kernel remounted read-only is.
    #[test]
    fn read_only_is_the_filesystems_own_state_not_this_views() {
        let table: &[(&str, bool)] = &[
            ("43 42 254:0 / / ro,relatime - ext4 /dev/vda rw,discard", false),
            ("43 42 254:0 / / rw,relatime - ext4 /dev/vda ro,errors=remount-ro", true),
            ("50 42 31:3 / /rom ro,relatime - squashfs /dev/root ro", true),
            ("51 42 0:44 / /mnt rw - vfat /dev/sdb1 rw,fmask=0022,dmask=0022,codepage=437,iocharset=ascii,errors=rorw", false),
            ("52 42 0:45 / /x rw - ext4 /dev/sdc1", false),
        ];
        for &(line, want) in table {
            assert_eq!(parse_line(line.as_bytes()).map(|m| m.read_only), Some(want), "{line}");
        }
    }

    #[test]
    fn malformed_lines_are_skipped() {
        let table = "garbage\n\n1 2 3\n22 1 8:2 / / rw - ext4 /dev/sda2 rw\n";
        assert_eq!(mounts_of(table, &DiskFilter::default()), ["/"]);
    }

    #[test]
    fn unescape_table() {
        let table: &[(&str, &str)] = &[
            ("/plain", "/plain"),
            ("/a\\040b", "/a b"),
            ("/tab\\011x", "/tab\tx"),
            ("/back\\134slash", "/back\\slash"),
            ("/short\\04", "/short\\04"),
            ("/not\\999", "/not\\999"),
            ("\\", "\\"),
        ];
        for &(input, want) in table {
            assert_eq!(unescape(input.as_bytes()), want.as_bytes(), "{input}");
        }
    }

    #[test]
    fn usage_table() {
        let table: &[(FsStats, DiskUsage, u64)] = &[
            // ext4 with 5 % reserved: df shows 79 %, not 75 %.
            (
                FsStats { blocks: 1000, bfree: 250, bavail: 200, frsize: 4096 },
                DiskUsage { total: 4_096_000, free: 819_200, used: 3_072_000 },
                79,
            ),
            (
                FsStats { blocks: 10, bfree: 10, bavail: 10, frsize: 1024 },
                DiskUsage { total: 10_240, free: 10_240, used: 0 },
                0,
            ),
            // Byte counts above 4 GiB must not wrap on 32-bit targets: 16 TiB.
            (
                FsStats { blocks: 1 << 32, bfree: 0, bavail: 0, frsize: 4096 },
                DiskUsage { total: 1 << 44, free: 0, used: 1 << 44 },
                100,
            ),
            // Corrupt figures saturate instead of wrapping.
            (
                FsStats { blocks: 5, bfree: 9, bavail: 9, frsize: u64::MAX },
                DiskUsage { total: u64::MAX, free: u64::MAX, used: 0 },
                0,
            ),
        ];
        for (st, want, pct) in table {
            let got = usage(*st);
            assert_eq!(got, *want, "{st:?}");
            assert_eq!(got.used_percent(), *pct, "{st:?}");
        }
    }

    static RELEASE: AtomicBool = AtomicBool::new(false);

    /// A statvfs stand-in: `/nfs` hangs until the test releases it.
    fn fake_stat(path: &Path) -> io::Result<FsInfo> {
        let path = path.to_str().unwrap_or_default();
        if path == "/nfs" {
            while !RELEASE.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        if path == "/denied" {
            return Err(io::ErrorKind::PermissionDenied.into());
        }
        let blocks = if path == "/empty" { 0 } else { 100 };
        Ok(FsInfo {
            stats: FsStats { blocks, bfree: 50, bavail: 40, frsize: 1024 },
            files: if path == "/vfat" { 0 } else { 1000 },
            ffree: 900,
        })
    }

    fn mount(path: &str) -> Mount {
        Mount {
            dev: path.len() as u64,
            whole: true,
            path: path.into(),
            mount: path.into(),
            fstype: "ext4".into(),
            source: "src".into(),
            read_only: path == "/rom",
        }
    }

    fn usage_of(disks: &[Disk]) -> Vec<(&str, bool)> {
        disks.iter().map(|d| (d.mount.as_str(), d.usage.is_some())).collect()
    }

    // Issue 6: a mount whose statvfs never returns must not stop the sampler.
    #[test]
    fn a_hanging_mount_is_reported_unavailable_until_it_answers() {
        let mut r = DiskReader::with_stat(fake_stat, Duration::from_millis(100));
        let mounts = || ["/", "/denied", "/empty", "/nfs", "/rom", "/vfat"].map(mount).to_vec();

        let started = Instant::now();
        let first = r.read_mounts(mounts());
        assert!(started.elapsed() < Duration::from_secs(5));
        // /nfs hangs: null usage; a new worker asks the mounts after it (issue 10).
        assert_eq!(usage_of(&first), [("/", true), ("/nfs", false), ("/rom", true), ("/vfat", true)]);

        // Next sample: /nfs is skipped at once, the others are asked again.
        let started = Instant::now();
        let second = r.read_mounts(mounts());
        assert!(started.elapsed() < Duration::from_millis(90), "did not wait for the stuck mount again");
        assert_eq!(usage_of(&second), [("/", true), ("/nfs", false), ("/rom", true), ("/vfat", true)]);
        assert_eq!(second[2].read_only, Some(true));
        assert_eq!(second[3].inodes, None, "vfat has no inode figures");
        assert_eq!(second[0].inodes.map(|i| (i.total, i.used(), i.free)), Some((1000, 100, 900)));

        // The server answers again: so does the mount.
        RELEASE.store(true, Ordering::Release);
        let mut third = Vec::new();
        for _ in 0..500 {
            third = r.read_mounts(mounts());
            if third.iter().all(|d| d.usage.is_some()) {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(usage_of(&third), [("/", true), ("/nfs", true), ("/rom", true), ("/vfat", true)]);
    }

    static SLOW_CALLS: AtomicUsize = AtomicUsize::new(0);

    /// A statvfs stand-in for a busy or CPU-capped machine: every call is healthy
    /// but takes 2 ms, so that 300 of them take far longer than the deadline.
    fn slow_stat(_: &Path) -> io::Result<FsInfo> {
        SLOW_CALLS.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(2));
        Ok(FsInfo { stats: FsStats { blocks: 10, bfree: 5, bavail: 5, frsize: 4096 }, files: 0, ffree: 0 })
    }

    // Issue 10: under a CPU cap, 1,840 healthy tmpfs mounts were reported with null
    // usage because the whole batch missed a deadline. The deadline is per call.
    #[test]
    fn a_slow_sample_never_blames_a_filesystem_that_answers() {
        let mut r = DiskReader::with_stat(slow_stat, Duration::from_millis(100));
        let paths: Vec<String> = (0..300).map(|i| format!("/tmp/x/{i}")).collect();
        let disks = r.read_mounts(paths.iter().map(|p| mount(p)).collect());
        assert_eq!(disks.len(), 300);
        let silent: Vec<&str> = disks.iter().filter(|d| d.usage.is_none()).map(|d| d.mount.as_str()).collect();
        assert!(silent.is_empty(), "healthy mounts reported as not answering: {} of 300", silent.len());
        assert_eq!(SLOW_CALLS.load(Ordering::Relaxed), 300, "one statvfs per mount");
    }

    fn instant_stat(_: &Path) -> io::Result<FsInfo> {
        Ok(FsInfo { stats: FsStats { blocks: 10, bfree: 5, bavail: 5, frsize: 4096 }, files: 0, ffree: 0 })
    }

    // Issue 10: each statvfs answer was matched to its mount by a linear search, and
    // the sampler was woken once per mount.
    #[test]
    fn asking_many_mounts_is_not_quadratic() {
        let emulated = std::env::var_os("FLUXSTAT_TEST_RUNNER").is_some_and(|r| !r.is_empty());
        let n = if emulated { 500 } else { 2_000 };
        let mut r = DiskReader::with_stat(instant_stat, Duration::from_secs(10));
        let mut time = |count: usize| {
            let paths: Vec<String> = (0..count).map(|i| format!("/tmp/x/{i}")).collect();
            let mut best = Duration::MAX;
            for _ in 0..3 {
                let mounts: Vec<Mount> = paths.iter().map(|p| mount(p)).collect();
                let started = Instant::now();
                let disks = r.read_mounts(mounts);
                best = best.min(started.elapsed());
                assert_eq!(disks.iter().filter(|d| d.usage.is_some()).count(), count);
            }
            best
        };
        let (t_small, t_big) = (time(n), time(16 * n));
        let ratio = t_big.as_secs_f64() / t_small.as_secs_f64().max(1e-6);
        assert!(ratio < 80.0, "{n} mounts: {t_small:?}; {}: {t_big:?} ({ratio:.0}×)", 16 * n);
    }

    /// Mount table lines for `n` tmpfs mounts under /tmp/x, in the kernel's order.
    fn many_tmpfs(n: usize) -> Vec<u8> {
        let mut t = b"22 1 8:2 / / rw - ext4 /dev/sda2 rw\n".to_vec();
        for i in 0..n {
            t.extend_from_slice(
                format!("{} 22 0:{} / /tmp/x/{i} rw shared:{i} - tmpfs none rw\n", 100 + i, 100 + i).as_bytes(),
            );
        }
        // A bind mount of each of the first hundred, which must be listed once.
        for i in 0..100.min(n) {
            t.extend_from_slice(
                format!("{} 22 0:{} / /srv/bind/{i} rw - tmpfs none rw\n", 20_000 + i, 100 + i).as_bytes(),
            );
        }
        t
    }

    // Issue 10: dedup of bind mounts, top-mount selection and ordering were
    // quadratic (3,000 mounts: 78 ms a sample, 10,000: 0.75 s).
    #[test]
    fn selecting_among_many_mounts_is_not_quadratic() {
        // Under an emulator (cross/test-under-qemu.sh), some 40 times slower: fewer.
        let emulated = std::env::var_os("FLUXSTAT_TEST_RUNNER").is_some_and(|r| !r.is_empty());
        let n = if emulated { 500 } else { 2_000 };
        let small = parse_mountinfo(&many_tmpfs(n));
        let big = parse_mountinfo(&many_tmpfs(16 * n));
        let filter = DiskFilter::default();
        // The quickest of three runs, so that a preempted run does not count.
        let time = |mounts: &Vec<Mount>| {
            let mut best = (Duration::MAX, Vec::new());
            for _ in 0..3 {
                let input = mounts.clone();
                let started = Instant::now();
                let chosen = select(input, &filter);
                best = (best.0.min(started.elapsed()), chosen);
            }
            best
        };
        let (t_small, chosen_small) = time(&small);
        let (t_big, chosen_big) = time(&big);
        assert_eq!((chosen_small.len(), chosen_big.len()), (n + 1, 16 * n + 1));
        assert_eq!(chosen_big[0].mount, "/");
        assert!(chosen_big.windows(2).all(|w| w[0].path.as_os_str() < w[1].path.as_os_str()), "sorted by mount point");
        // 16 times the mounts: linear-log is some 20 times the time, quadratic 256.
        let ratio = t_big.as_secs_f64() / t_small.as_secs_f64().max(1e-6);
        assert!(ratio < 80.0, "{n} mounts: {t_small:?}; {}: {t_big:?} ({ratio:.0}×)", 16 * n);
    }

    // Issue 10: one mount point with non-UTF-8 bytes (a Latin-1 USB label) made the
    // whole family null. Each is decoded on its own, and statvfs gets the bytes.
    #[test]
    fn non_utf8_mount_points_are_decoded_per_entry() {
        let table = b"22 1 8:2 / / rw - ext4 /dev/sda2 rw\n\
35 27 8:17 / /media/USB\\040caf\xe9 rw shared:41 - vfat /dev/sdb\xff rw\n\
36 27 8:18 / /media/caf\xc3\xa9 rw - vfat /dev/sdc1 rw\n";
        let got = select(parse_mountinfo(table), &DiskFilter::default());
        let shown: Vec<(&str, &str)> = got.iter().map(|m| (m.mount.as_str(), m.source.as_str())).collect();
        assert_eq!(shown, [("/", "/dev/sda2"), ("/media/USB caf\\xe9", "/dev/sdb\\xff"), ("/media/café", "/dev/sdc1")]);
        assert_eq!(got[1].path.as_os_str().as_encoded_bytes(), b"/media/USB caf\xe9", "the bytes statvfs is called on");
    }

    /// Whether this process's mount table is a procfs file (an emulator may serve
    /// a copy of its own).
    fn mountinfo_on_procfs(proc: &Path) -> bool {
        std::fs::File::open(proc.join("self/mountinfo")).is_ok_and(|f| fs::on_procfs(&f))
    }

    // Issue 10: the mount table was read and parsed every sample. On procfs it is
    // read again only when poll says the table changed.
    #[test]
    fn an_unchanged_mount_table_on_procfs_is_read_once() {
        let proc = Path::new("/proc");
        if !mountinfo_on_procfs(proc) {
            eprintln!("skipped: /proc/self/mountinfo is not on procfs here");
            return;
        }
        let mut r = DiskReader::with_stat(instant_stat, Duration::from_secs(10));
        let filter = DiskFilter::default();
        let first = r.read(proc, &filter).expect("disks");
        for _ in 0..5 {
            let again = r.read(proc, &filter).expect("disks");
            assert_eq!(
                again.iter().map(|d| &d.mount).collect::<Vec<_>>(),
                first.iter().map(|d| &d.mount).collect::<Vec<_>>()
            );
        }
        // Another process may mount something meanwhile: at most a few reads more.
        assert!(r.table_reads() < 4, "read {} times in 6 samples", r.table_reads());
        // Another filter selects again at once.
        let none = DiskFilter { exclude_fs: GlobList::default(), exclude_mount: GlobList::default() };
        let all = r.read(proc, &none).expect("disks");
        assert!(all.iter().any(|d| d.mount == "/proc"), "the new filter applies at once");
    }

    // A --procfs fixture tree has a regular file, which never signals a change:
    // it is read afresh every sample.
    #[test]
    fn a_mount_table_that_is_a_regular_file_is_read_every_sample() {
        let dir = std::env::temp_dir().join(format!("fluxstat-mountinfo-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("self")).expect("fixture dir");
        let table = dir.join("self/mountinfo");
        let root = "22 1 8:2 / / rw - ext4 /dev/sda2 rw\n";
        std::fs::write(&table, root).expect("mountinfo");
        let mut r = DiskReader::with_stat(instant_stat, Duration::from_secs(10));
        let filter = DiskFilter::default();
        let mounts =
            |r: &mut DiskReader| r.read(&dir, &filter).map(|d| d.into_iter().map(|d| d.mount).collect::<Vec<_>>());
        assert_eq!(mounts(&mut r), Some(vec!["/".to_owned()]));
        // Rewritten in place (same file) and replaced (a new file): both seen next sample.
        std::fs::write(&table, format!("{root}40 22 0:99 / /data rw - xfs /dev/sdd1 rw\n")).expect("mountinfo");
        assert_eq!(mounts(&mut r), Some(vec!["/".to_owned(), "/data".to_owned()]));
        let new = dir.join("self/mountinfo.new");
        std::fs::write(&new, format!("{root}41 22 0:98 / /srv rw - xfs /dev/sde1 rw\n")).expect("mountinfo");
        std::fs::rename(&new, &table).expect("rename");
        assert_eq!(mounts(&mut r), Some(vec!["/".to_owned(), "/srv".to_owned()]));
        std::fs::remove_file(&table).expect("remove");
        assert_eq!(mounts(&mut r), None, "no mount table: the family is null");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The calling thread's voluntary context switches so far.
    fn voluntary_switches() -> Option<u64> {
        let status = std::fs::read_to_string("/proc/thread-self/status").ok()?;
        status.lines().find_map(|l| l.strip_prefix("voluntary_ctxt_switches:")).and_then(|v| v.trim().parse().ok())
    }

    /// The statvfs worker's voluntary switches, as of its last call for `/first`.
    static WORKER_SWITCHES: AtomicUsize = AtomicUsize::new(0);

    /// A statvfs stand-in that works for about 50 µs without blocking, and notes
    /// the worker's switches.
    fn busy_stat(path: &Path) -> io::Result<FsInfo> {
        if path == Path::new("/first") {
            let n = voluntary_switches().and_then(|n| usize::try_from(n).ok()).unwrap_or(usize::MAX);
            WORKER_SWITCHES.store(n, Ordering::Relaxed);
        }
        let started = Instant::now();
        while started.elapsed() < Duration::from_micros(50) {
            std::hint::spin_loop();
        }
        instant_stat(path)
    }

    // Issue 10: each thread notified the other while holding the mutex, so the
    // woken thread could run only to block on it: the sampler blocked twice a
    // sample instead of once (1.96 in this test before the fix). Both threads on
    // one core, as on a router.
    #[test]
    fn the_hand_off_wakes_the_worker_once_per_sample() {
        let tid = std::fs::read_link("/proc/thread-self").ok().and_then(|p| p.file_name().map(|n| n.to_owned()));
        let pinned = tid.as_ref().is_some_and(|tid| {
            std::process::Command::new("taskset")
                .args(["-p", "-c", "0"])
                .arg(tid)
                .stdout(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        let emulated = std::env::var_os("FLUXSTAT_TEST_RUNNER").is_some_and(|r| !r.is_empty());
        if emulated || !pinned || voluntary_switches().is_none() {
            eprintln!("skipped: needs taskset(1), /proc/thread-self and a native run");
            return;
        }
        // The worker, spawned by this thread, inherits its core.
        let mut r = DiskReader::with_stat(busy_stat, Duration::from_secs(10));
        let mounts = || ["/first", "/second", "/third"].map(mount).to_vec();
        assert_eq!(r.read_mounts(mounts()).len(), 3);
        let before = WORKER_SWITCHES.load(Ordering::Relaxed);
        const SAMPLES: u64 = 100;
        // The sampler's own switches while it reads disks (not while it sleeps).
        let mut sampler = 0;
        for _ in 0..SAMPLES {
            // Between samples the worker parks, as it does between ticks.
            std::thread::sleep(Duration::from_millis(2));
            let start = voluntary_switches().unwrap_or_default();
            assert_eq!(r.read_mounts(mounts()).len(), 3);
            sampler += voluntary_switches().unwrap_or_default().saturating_sub(start);
        }
        let after = WORKER_SWITCHES.load(Ordering::Relaxed);
        let worker = after.saturating_sub(before) as f64 / SAMPLES as f64;
        let sampler = sampler as f64 / SAMPLES as f64;
        assert!(worker < 1.3, "the statvfs worker blocked {worker:.2} times a sample");
        assert!(sampler < 1.3, "the sampler blocked {sampler:.2} times a sample");
    }
}
