//! Bounded reads of `/proc` and `/sys` files, and the one rule for turning the
//! bytes the kernel gives into names.
//!
//! Nothing here reads without a bound: a sysfs value is read up to a few hundred
//! bytes (a sensor file that is a symlink to `/dev/zero` costs one short read),
//! and tables such as mountinfo and net/dev are streamed line by line through a
//! fixed buffer, an over-long line skipped, the whole read capped. Files are
//! opened `O_NONBLOCK`, so a FIFO in place of a sysfs file cannot block the open;
//! a read that blocks is the sampler's deadline worker's business, not this
//! module's.
//!
//! Names are bytes to the kernel. fluxstat decodes each name on its own: valid
//! UTF-8 is kept, every byte that is not part of valid UTF-8 is written `\xNN`
//! (two lower-case hex digits, Python's `backslashreplace`), so a Latin-1 `é`
//! (0xE9) reads `\xe9`, and one odd name never hides the rest of its family.
//!
//! The readers' one seam with the OS's types: `open`, `os_path`, `on_procfs` and
//! `flagged` have a Unix and a Windows body (Windows only needs the shared readers
//! to compile; it reads no procfs, see `sample::windows`).

use std::fs::File;
use std::io::{self, Read};
#[cfg(unix)]
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The most a sysfs value fluxstat reads may hold (a type, a label, a number).
pub const MAX_VALUE: usize = 512;

/// Opens a file for reading without blocking on the open (FIFOs), close-on-exec.
#[cfg(unix)]
pub fn open(path: &Path) -> io::Result<File> {
    // OFlags bits are small positive constants; the cast cannot truncate.
    let nonblock = rustix::fs::OFlags::NONBLOCK.bits() as i32;
    std::fs::OpenOptions::new().read(true).custom_flags(nonblock).open(path)
}

/// Windows: a plain open (no FIFO can stand in a file's place there).
#[cfg(windows)]
pub fn open(path: &Path) -> io::Result<File> {
    File::open(path)
}

/// A path from the kernel's bytes, unchanged, whatever they are.
#[cfg(unix)]
pub fn os_path(bytes: Vec<u8>) -> PathBuf {
    PathBuf::from(<std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(bytes))
}

/// Windows: paths are UTF-16 there; bytes that are not UTF-8 are decoded.
#[cfg(windows)]
pub fn os_path(bytes: Vec<u8>) -> PathBuf {
    PathBuf::from(decode(&bytes))
}

/// procfs's `f_type` (statfs(2)).
#[cfg(unix)]
const PROC_SUPER_MAGIC: i64 = 0x9fa0;

/// Whether `file` is on a real procfs (`fstatfs` says `PROC_SUPER_MAGIC`).
#[cfg(unix)]
// `f_type` is an `i64` on 64-bit targets, an `i32` or `u32` on others.
#[allow(clippy::useless_conversion)]
pub fn on_procfs(file: &File) -> bool {
    rustix::fs::fstatfs(file).is_ok_and(|st| i64::from(st.f_type) == PROC_SUPER_MAGIC)
}

/// Windows: there is no procfs.
#[cfg(windows)]
pub fn on_procfs(_: &File) -> bool {
    false
}

/// Whether the kernel flagged a procfs file (`poll` reports `POLLPRI`: the mount
/// table changed); an error counts as flagged.
#[cfg(unix)]
pub fn flagged(file: &File) -> bool {
    let mut fds = [rustix::event::PollFd::new(file, rustix::event::PollFlags::PRI)];
    let now = rustix::event::Timespec { tv_sec: 0, tv_nsec: 0 };
    match rustix::event::poll(&mut fds, Some(&now)) {
        Ok(0) => false,
        Ok(_) => true,
        Err(_) => true,
    }
}

/// Windows: never reached (`on_procfs` is false); flagged, so a caller reads afresh.
#[cfg(windows)]
pub fn flagged(_: &File) -> bool {
    true
}

/// The content of a small file, at most `max` bytes; a longer file is an error
/// (`InvalidData`) after reading `max + 1` bytes.
pub fn read_bounded(path: &Path, max: usize) -> io::Result<Vec<u8>> {
    read_from(open(path)?, max)
}

fn read_from(mut file: File, max: usize) -> io::Result<Vec<u8>> {
    let mut out = vec![0u8; max + 1];
    let mut n = 0;
    while n < out.len() {
        match file.read(&mut out[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if n > max {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("longer than {max} bytes")));
    }
    out.truncate(n);
    Ok(out)
}

/// A sysfs value, decoded, without surrounding blanks or the NUL some
/// (device-tree) files end with; `None` when unreadable, empty or too long.
pub fn read_value(path: &Path) -> Option<String> {
    trimmed(&read_bounded(path, MAX_VALUE).ok()?)
}

/// A value of a file backed by a driver (a sensor), like `read_value` but opened
/// as any program would, without `O_NONBLOCK`: a driver's read may block whatever
/// the flags (a wedged I²C bus), so the readers that call this run under the
/// sampler's deadline worker, which is what bounds them in time; a FIFO in a
/// fixture tree stands in for such a driver.
pub fn read_driver_value(path: &Path) -> Option<String> {
    trimmed(&read_from(File::open(path).ok()?, MAX_VALUE).ok()?)
}

fn trimmed(bytes: &[u8]) -> Option<String> {
    let s = decode(bytes);
    let s = s.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    (!s.is_empty()).then(|| s.to_owned())
}

/// Calls `each` with every line of `r` (without its `\n`), reading through a fixed
/// buffer. A line longer than `max_line` bytes is skipped; reading more than
/// `max_total` bytes in all is an error (`InvalidData`), so a file that never ends
/// is given up rather than read forever.
///
/// Not generic, so that the readers share one copy of it.
pub fn for_each_line(r: &mut dyn Read, max_line: usize, max_total: u64, each: &mut dyn FnMut(&[u8])) -> io::Result<()> {
    let mut buf = vec![0u8; 16 * 1024];
    // The start of a line that continues past the buffer.
    let mut carry: Vec<u8> = Vec::new();
    let mut skipping = false;
    let mut total: u64 = 0;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        total += n as u64;
        if total > max_total {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "longer than expected"));
        }
        let mut rest = &buf[..n];
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            let (line, after) = (&rest[..end], &rest[end + 1..]);
            if skipping {
                skipping = false;
            } else if carry.is_empty() {
                if line.len() <= max_line {
                    each(line);
                }
            } else {
                if carry.len() + line.len() <= max_line {
                    carry.extend_from_slice(line);
                    each(&carry);
                }
                carry.clear();
            }
            rest = after;
        }
        if !skipping {
            if carry.len() + rest.len() > max_line {
                carry.clear();
                skipping = true;
            } else {
                carry.extend_from_slice(rest);
            }
        }
    }
    if !skipping && !carry.is_empty() {
        each(&carry);
    }
    Ok(())
}

/// Streams the lines of the file at `path`; see [`for_each_line`].
pub fn read_lines(path: &Path, max_line: usize, max_total: u64, each: &mut dyn FnMut(&[u8])) -> io::Result<()> {
    for_each_line(&mut open(path)?, max_line, max_total, each)
}

/// A name from the kernel's bytes: valid UTF-8 as it is, any other byte as `\xNN`.
pub fn decode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\x");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max_line: usize, chunk: usize) -> Vec<Vec<u8>> {
        // A reader that hands out `chunk` bytes at a time, to cross buffer edges.
        struct Trickle<'a>(&'a [u8], usize);
        impl Read for Trickle<'_> {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(self.1).min(out.len());
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut got = Vec::new();
        for_each_line(&mut Trickle(input, chunk), max_line, 1 << 20, &mut |l| got.push(l.to_vec())).expect("reads");
        got
    }

    #[test]
    fn lines_across_reads_with_long_lines_skipped() {
        let long = vec![b'x'; 40];
        let mut input = b"a\nbb\n".to_vec();
        input.extend_from_slice(&long);
        input.extend_from_slice(b"\nccc\n\ndd");
        for chunk in [1, 2, 3, 7, 64, 1 << 16] {
            let got = lines(&input, 10, chunk);
            let want: Vec<&[u8]> = vec![b"a", b"bb", b"ccc", b"", b"dd"];
            assert_eq!(got, want, "chunk {chunk}");
        }
        // Exactly at the bound is kept, one over is skipped; an unterminated long tail too.
        assert_eq!(lines(b"12345\n123456\n1234567", 5, 2), [b"12345".to_vec()]);
        // A line longer than the 16 KiB read buffer still arrives whole.
        let big = vec![b'y'; 40_000];
        let mut input = big.clone();
        input.extend_from_slice(b"\nz\n");
        assert_eq!(lines(&input, 50_000, 1 << 20), [big, b"z".to_vec()]);
    }

    #[test]
    fn a_file_that_never_ends_is_given_up() {
        let err = for_each_line(&mut std::io::repeat(b'0'), 100, 1 << 20, &mut |_| {}).expect_err("bounded");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let err = for_each_line(&mut std::io::repeat(b'\n'), 100, 1 << 20, &mut |_| {}).expect_err("bounded");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn decode_table() {
        let table: &[(&[u8], &str)] = &[
            (b"eth0", "eth0"),
            (b"USB caf\xc3\xa9", "USB café"),
            (b"USB caf\xe9", "USB caf\\xe9"),
            (b"\xff\xfe", "\\xff\\xfe"),
            (b"a\xc3", "a\\xc3"),
            (b"", ""),
        ];
        for &(input, want) in table {
            assert_eq!(decode(input), want, "{input:?}");
        }
    }

    #[test]
    #[cfg(unix)] // /dev/zero
    fn values_are_read_with_a_bound() {
        let dir = std::env::temp_dir().join(format!("fluxstat-fs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let zero = dir.join("temp");
        let _ = std::fs::remove_file(&zero);
        std::os::unix::fs::symlink("/dev/zero", &zero).expect("symlink");
        assert_eq!(read_bounded(&zero, MAX_VALUE).map_err(|e| e.kind()), Err(io::ErrorKind::InvalidData));
        assert_eq!(read_value(&zero), None);
        let ok = dir.join("type");
        std::fs::write(&ok, b"soc\n").expect("write");
        assert_eq!(read_value(&ok).as_deref(), Some("soc"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
