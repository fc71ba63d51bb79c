//! Real servers for the tests on Linux (issue 13): finding a tool (a missing
//! one skips the test with a printed reason, or fails it when `CI` is set),
//! throw-away directories, a server process killed by its PID when dropped,
//! one-shot HTTP/1.0 requests and `/metrics` with its sample time. Shared by
//! the pushers' tests (`push`) and the pull recipes' (`pull`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use miniserde::json::{self, Value};

use crate::support::{emulated, PATIENCE};

/// The path of `tool`, or `None` (and why) when the test must be skipped.
pub fn tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/usr/bin", "/sbin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(std::env::var_os("CI").is_none(), "CI is set but {name} is not installed (.ci/run installs it)");
        eprintln!(
            "skipping: {name} is not installed (apt-get install influxdb victoria-metrics mosquitto mosquitto-clients collectd-core)"
        );
    }
    found
}

pub fn skip_emulated() -> bool {
    if emulated() {
        eprintln!("skipping under the emulator: the native test run talks to the real servers");
    }
    emulated()
}

/// A throw-away directory, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("fluxstat-push-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A server process, killed by its PID when dropped.
pub struct Daemon(pub Child);

impl Daemon {
    pub fn start(cmd: &mut Command) -> Daemon {
        Daemon(cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("start server"))
    }

    pub fn stop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One HTTP/1.0 request: the status, the `ETag` and the body.
pub fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> Option<(u16, Option<String>, String)> {
    let mut s = TcpStream::connect_timeout(&addr, PATIENCE).ok()?;
    s.set_read_timeout(Some(PATIENCE)).ok()?;
    let req = format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    s.write_all(req.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    let status = head.get(9..12)?.parse().ok()?;
    let etag = head
        .lines()
        .find_map(|l| l.strip_prefix("ETag: ").or_else(|| l.strip_prefix("etag: ")))
        .map(|v| v.trim_matches('"').to_owned());
    Some((status, etag, body.to_owned()))
}

pub fn wait_until(what: &str, patience: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + patience;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn metrics(addr: SocketAddr) -> (Value, i64) {
    let (status, etag, body) = http(addr, "GET", "/metrics", "").expect("GET /metrics");
    assert_eq!(status, 200, "{body}");
    let us = etag.and_then(|e| i64::from_str_radix(e.split('-').next()?, 16).ok()).expect("ETag with the sample time");
    (json::from_str(&body).expect("JSON"), us)
}
