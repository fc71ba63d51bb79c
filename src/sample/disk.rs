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
//! 5. The rest is sorted by mount point, so `disk_N` is stable between samples.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::glob::GlobList;
use crate::snapshot::{Disk, DiskUsage, Inodes};

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
            exclude_fs: GlobList::parse(DEFAULT_EXCLUDE_FS),
            exclude_mount: GlobList::parse(DEFAULT_EXCLUDE_MOUNT),
        }
    }
}

impl DiskFilter {
    fn keeps(&self, m: &Mount) -> bool {
        !self.exclude_fs.matches(&m.fstype) && !self.exclude_mount.matches(&m.mount)
    }
}

/// One line of /proc/self/mountinfo, the fields fluxstat uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// `major:minor` of the filesystem: equal for bind mounts of one filesystem.
    pub dev: String,
    /// The path inside the filesystem that is mounted (`/` unless a bind mount).
    pub root: String,
    pub mount: String,
    pub fstype: String,
    pub source: String,
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
    pub read_only: bool,
}

/// The statvfs call; replaceable so tests can simulate a filesystem that hangs.
pub type StatFn = fn(&str) -> io::Result<FsInfo>;

/// Windows' equivalent, by drive letter (`C:\`).
#[cfg(windows)]
pub use super::windows::disk::statvfs;

#[cfg(not(windows))]
pub fn statvfs(path: &str) -> io::Result<FsInfo> {
    let st = rustix::fs::statvfs(path)?;
    Ok(FsInfo {
        stats: FsStats { blocks: st.f_blocks, bfree: st.f_bfree, bavail: st.f_bavail, frsize: st.f_frsize },
        files: st.f_files,
        ffree: st.f_ffree,
        read_only: st.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY),
    })
}

/// Reads disks with a deadline per sample, so that a mount whose statvfs never
/// returns (a dead NFS server) cannot stop the sampler.
///
/// statvfs runs on a worker thread. When the deadline passes, the mount the worker
/// is stuck on is remembered and reported with `usage: null` until its call
/// returns; the worker is abandoned (it exits once its call returns) and a new one
/// serves the other mounts. At most one thread is parked per stuck mount.
pub struct DiskReader {
    stat: StatFn,
    timeout: Duration,
    worker: Option<Worker>,
    stuck: Vec<(String, Arc<AtomicBool>)>,
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
    result_ready: Condvar,
}

#[derive(Default)]
struct Exchange {
    /// Mounts still to ask, the next one last.
    jobs: Vec<String>,
    results: Vec<(String, io::Result<FsInfo>)>,
    /// The mount being asked, and the flag its call sets when it returns.
    current: Option<(String, Arc<AtomicBool>)>,
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
            let Some(path) = ex.jobs.pop() else {
                ex = self.job_ready.wait(ex).unwrap_or_else(PoisonError::into_inner);
                continue;
            };
            let done = Arc::new(AtomicBool::new(false));
            ex.current = Some((path.clone(), Arc::clone(&done)));
            drop(ex);
            let r = stat(&path);
            done.store(true, Ordering::Release);
            ex = self.lock();
            ex.current = None;
            ex.results.push((path, r));
            self.result_ready.notify_one();
        }
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
        DiskReader { stat, timeout, worker: None, stuck: Vec::new() }
    }

    /// Reads the mount table and the figures of every listed mount. `None` when the
    /// mount table itself cannot be read; a mount whose statvfs fails is skipped.
    pub fn read(&mut self, procfs: &Path, filter: &DiskFilter) -> Option<Vec<Disk>> {
        let table = std::fs::read_to_string(procfs.join("self/mountinfo")).ok()?;
        Some(self.read_mounts(select(parse_mountinfo(&table), filter)))
    }

    pub fn read_mounts(&mut self, mounts: Vec<Mount>) -> Vec<Disk> {
        self.stuck.retain(|(_, done)| !done.load(Ordering::Acquire));
        let infos = self.stat_all(&mounts);
        mounts
            .into_iter()
            .zip(infos)
            .filter_map(|(m, info)| {
                let (usage, read_only, inodes) = match info {
                    Answer::Ok(i) if i.stats.blocks == 0 => return None,
                    Answer::Ok(i) => (
                        Some(usage(i.stats)),
                        Some(i.read_only),
                        (i.files > 0).then_some(Inodes { total: i.files, free: i.ffree.min(i.files) }),
                    ),
                    Answer::Failed => return None,
                    Answer::Silent => (None, None, None),
                };
                Some(Disk { name: m.source, mount: m.mount, filesystem: m.fstype, usage, read_only, inodes })
            })
            .collect()
    }

    fn stat_all(&mut self, mounts: &[Mount]) -> Vec<Answer> {
        let mut answers: Vec<Answer> = vec![Answer::Silent; mounts.len()];
        if self.worker.is_none() {
            self.worker = Worker::spawn(self.stat);
        }
        let Some(worker) = &self.worker else { return answers };
        let shared = &worker.shared;
        let mut ex = shared.lock();
        ex.results.clear();
        ex.jobs.clear();
        let stuck = &self.stuck;
        ex.jobs
            .extend(mounts.iter().rev().filter(|m| !stuck.iter().any(|(s, _)| *s == m.mount)).map(|m| m.mount.clone()));
        let mut asked = ex.jobs.len();
        shared.job_ready.notify_one();
        let deadline = Instant::now() + self.timeout;
        while asked > 0 {
            let Some((path, r)) = ex.results.pop() else {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    if let Some((path, done)) = ex.current.take() {
                        crate::warn!(
                            "statvfs of {path} did not answer within {} ms; reporting it unavailable",
                            self.timeout.as_millis()
                        );
                        self.stuck.push((path, done));
                    }
                    drop(ex);
                    self.worker = None;
                    break;
                }
                ex = shared.result_ready.wait_timeout(ex, left).unwrap_or_else(PoisonError::into_inner).0;
                continue;
            };
            asked -= 1;
            if let Some(i) = mounts.iter().position(|m| m.mount == path) {
                answers[i] = match r {
                    Ok(info) => Answer::Ok(info),
                    Err(_) => Answer::Failed,
                };
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
pub fn parse_mountinfo(table: &str) -> Vec<Mount> {
    table.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Mount> {
    // 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
    let (left, right) = line.split_once(" - ")?;
    let mut l = left.split(' ');
    let (_id, _parent) = (l.next()?, l.next()?);
    let dev = l.next()?;
    let root = l.next()?;
    let mount = l.next()?;
    let mut r = right.split(' ');
    let fstype = r.next()?;
    let source = r.next()?;
    Some(Mount {
        dev: dev.to_owned(),
        root: unescape(root),
        mount: unescape(mount),
        fstype: unescape(fstype),
        source: unescape(source),
    })
}

/// Undoes the kernel's octal escapes (`\040` for space, `\011`, `\012`, `\134`).
fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_owned();
    }
    let b = s.as_bytes();
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
    String::from_utf8_lossy(&out).into_owned()
}

/// Steps 1–3 and 5 of the module doc: which mounts are listed, in which order.
pub fn select(mounts: Vec<Mount>, filter: &DiskFilter) -> Vec<Mount> {
    // 1. Keep only the top mount of each mount point (later lines are on top).
    let mut top: Vec<Mount> = Vec::with_capacity(mounts.len());
    for m in mounts {
        top.retain(|t| t.mount != m.mount);
        top.push(m);
    }
    // 2. Filters.
    top.retain(|m| filter.keeps(m));
    // 3. One entry per filesystem: prefer the mount of its root, then the shortest path.
    let mut chosen: Vec<Mount> = Vec::with_capacity(top.len());
    for m in top {
        match chosen.iter_mut().find(|c| c.dev == m.dev) {
            Some(c) if rank(&m) < rank(c) => *c = m,
            Some(_) => {}
            None => chosen.push(m),
        }
    }
    // 5. Stable order.
    super::sort_short(&mut chosen, |m| m.mount.as_str());
    chosen
}

fn rank(m: &Mount) -> (bool, usize, &str) {
    (m.root != "/", m.mount.len(), m.mount.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        select(parse_mountinfo(table), filter).into_iter().map(|m| m.mount).collect()
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
        let got = select(parse_mountinfo(table), &DiskFilter::default());
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].fstype.as_str(), got[0].source.as_str()), ("xfs", "/dev/sdd1"));
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
            assert_eq!(unescape(input), want, "{input}");
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
    fn fake_stat(path: &str) -> io::Result<FsInfo> {
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
            read_only: path == "/rom",
        })
    }

    fn mount(path: &str) -> Mount {
        Mount { dev: path.into(), root: "/".into(), mount: path.into(), fstype: "ext4".into(), source: "src".into() }
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
        // /nfs hangs: null usage; mounts after it in this sample are unanswered too.
        assert_eq!(usage_of(&first), [("/", true), ("/nfs", false), ("/rom", false), ("/vfat", false)]);

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
}
