//! Bounded reads of `/proc` and `/sys` files, and the files the sampler keeps open.
//!
//! Every read the sampler's own readers make goes through here, with a size
//! bound: a file that never ends (`/dev/zero` behind a sensor's symlink) costs at
//! most the bound, never memory without limit. A read that comes to more than the
//! bound is an error, not a truncated text that might parse into a wrong figure.
//!
//! The files read every sample (`meminfo`, `loadavg`, `uptime`, fluxstat's own
//! `stat` and `statm`) are opened once and read again from offset 0 with `pread`:
//! procfs renders them afresh on every read from the start. That saves the open
//! and close of each sample, and the sampler never needs a new descriptor for
//! them, so a process that runs out of descriptors (many connections) keeps those
//! families. A failed read closes the file; the next sample opens it again.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The bound for a file holding one value (sysfs attributes, hostname).
pub const SMALL: usize = 4096;
/// The bound for a table such as `/proc/meminfo` or `/etc/os-release`.
pub const TABLE: usize = 64 * 1024;

/// Why a file could not be read: its path and the OS error. `Display` gives both.
#[derive(Debug)]
pub struct Miss {
    pub path: PathBuf,
    pub error: io::Error,
}

impl Miss {
    pub fn new(path: &Path, error: io::Error) -> Miss {
        Miss { path: path.to_owned(), error }
    }

    /// Whether the failure is fluxstat's own shortage (descriptors, memory)
    /// rather than something the machine lacks.
    pub fn is_resource_shortage(&self) -> bool {
        is_shortage(&self.error)
    }
}

impl std::fmt::Display for Miss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.error)
    }
}

/// EMFILE, ENFILE or ENOMEM: the process or the system is out of descriptors or
/// memory. Such a failure says nothing about the machine's figures.
pub fn is_shortage(e: &io::Error) -> bool {
    let errno = e.raw_os_error();
    errno == Some(rustix::io::Errno::MFILE.raw_os_error())
        || errno == Some(rustix::io::Errno::NFILE.raw_os_error())
        || errno == Some(rustix::io::Errno::NOMEM.raw_os_error())
        || e.kind() == io::ErrorKind::OutOfMemory
}

fn too_long(limit: usize) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("longer than {limit} bytes"))
}

fn not_text() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text")
}

/// Reads at most `limit` bytes of `path` as text (`fs::read_bounded`); longer
/// content is an error.
pub fn read_bounded(path: &Path, limit: usize) -> Result<String, Miss> {
    super::fs::read_bounded(path, limit)
        .and_then(|bytes| String::from_utf8(bytes).map_err(|_| not_text()))
        .map_err(|e| Miss::new(path, e))
}

/// A file kept open and read from the start each time, into a reused buffer.
#[derive(Debug)]
pub struct KeptFile {
    path: PathBuf,
    limit: usize,
    file: Option<File>,
    buf: Vec<u8>,
}

impl KeptFile {
    /// Nothing is opened until the first read.
    pub fn new(path: PathBuf, limit: usize) -> KeptFile {
        KeptFile { path, limit, file: None, buf: Vec::new() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The whole current content, read from offset 0.
    pub fn read(&mut self) -> Result<&str, Miss> {
        match self.fill() {
            Ok(()) => std::str::from_utf8(&self.buf).map_err(|_| Miss::new(&self.path, not_text())),
            Err(e) => {
                self.file = None;
                Err(Miss::new(&self.path, e))
            }
        }
    }

    fn fill(&mut self) -> io::Result<()> {
        let file = match &self.file {
            Some(f) => f,
            None => self.file.insert(File::open(&self.path)?),
        };
        self.buf.clear();
        let mut chunk = [0u8; 4096];
        loop {
            let n = match file.read_at(&mut chunk, self.buf.len() as u64) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                return Ok(());
            }
            if self.buf.len() + n > self.limit {
                return Err(too_long(self.limit));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// Whether this process can open one more descriptor right now. The sampler asks
/// when a family it cannot see into (sysinfo, the disk and network readers) came
/// back empty: a failure then is most likely fluxstat's shortage, not the machine's.
pub fn descriptor_shortage() -> Option<io::Error> {
    // A duplicate of stderr needs no path lookup; a closed stderr (EBADF) says nothing.
    match rustix::io::fcntl_dupfd_cloexec(io::stderr(), 0) {
        Ok(_) => None,
        Err(e) => Some(io::Error::from(e)).filter(is_shortage),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str, content: &[u8]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("fluxstat-files-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("f");
        std::fs::write(&path, content).expect("write");
        path
    }

    #[test]
    fn an_endless_file_costs_the_bound_only() {
        let e = read_bounded(Path::new("/dev/zero"), SMALL).expect_err("endless");
        assert!(e.to_string().contains("longer than 4096 bytes"), "{e}");
        let mut kept = KeptFile::new("/dev/zero".into(), SMALL);
        assert!(kept.read().is_err());
    }

    #[test]
    fn bounded_reads_table() {
        let exact = temp("exact", &[b'a'; 16]);
        assert_eq!(read_bounded(&exact, 16).map(|s| s.len()).ok(), Some(16));
        assert!(read_bounded(&exact, 15).is_err());
        let binary = temp("binary", &[0xff, 0xfe]);
        assert!(read_bounded(&binary, 16).is_err());
        let missing = read_bounded(Path::new("/nonexistent/fluxstat"), 16).expect_err("missing");
        assert!(missing.to_string().starts_with("/nonexistent/fluxstat: "), "{missing}");
        assert!(!missing.is_resource_shortage());
    }

    #[test]
    fn a_kept_file_is_read_from_the_start_each_time() {
        let path = temp("kept", b"first");
        let mut kept = KeptFile::new(path.clone(), 3000);
        assert_eq!(kept.read().ok(), Some("first"));
        std::fs::write(&path, b"second, longer").expect("rewrite");
        // The same open file (write() truncates in place), read again from 0.
        assert_eq!(kept.read().ok(), Some("second, longer"));
        std::fs::write(&path, vec![b'x'; 2500]).expect("rewrite");
        assert_eq!(kept.read().map(str::len).ok(), Some(2500), "more than one chunk");
        std::fs::remove_file(&path).expect("remove");
        // Still open: the removed file's content stays readable (as procfs's would).
        assert_eq!(kept.read().map(str::len).ok(), Some(2500));
    }

    #[test]
    fn proc_files_read_again_from_offset_0_are_fresh() {
        let mut uptime = KeptFile::new("/proc/uptime".into(), SMALL);
        let first = uptime.read().expect("uptime").to_owned();
        std::thread::sleep(std::time::Duration::from_millis(30));
        let second = uptime.read().expect("uptime").to_owned();
        assert_ne!(first, second, "procfs renders the file again on a read from 0");
    }
}
