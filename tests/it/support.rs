//! Test support: run the real server in-process on an ephemeral port, spawn the
//! real binary, and a small HTTP/1.1 client that writes raw bytes and parses
//! responses with httparse.

use std::io::{self, Read, Write};
#[cfg(windows)]
use std::net::TcpStream as StopStream;
use std::net::{SocketAddr, TcpListener, TcpStream};
#[cfg(unix)]
use std::os::unix::net::UnixStream as StopStream;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fluxstat::published::{Latest, Published};
use fluxstat::sample::{self, SamplerConfig};
use fluxstat::server::{self, Settings, Stats};
#[cfg(feature = "push")]
use fluxstat::snapshot::Pushed;
use fluxstat::snapshot::{
    BlockDevice, Conntrack, CoreFrequency, Counters, Cpu, Disk, DiskUsage, Fan, FlashWear, Host, Inodes, Interface,
    Load, Memory, Own, Power, Radio, Sensor, Snapshot, Swap,
};

/// How long any single wait in a test may take before it counts as a hang.
pub const PATIENCE: Duration = Duration::from_secs(10);

pub fn settings() -> Settings {
    Settings {
        max_connections: 128,
        request_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(60),
        interval: Duration::from_secs(1),
        cors_origin: None,
        shutdown_grace: Duration::from_millis(1500),
        access: Default::default(),
        page: true,
    }
}

/// A fixed snapshot: the example of the original README, on a Linux router
/// with every section filled in.
pub fn fixed_snapshot() -> Snapshot {
    Snapshot {
        uptime: Some(947_578),
        cpu: Some(Cpu { total_percent: 25.8, per_core_percent: vec![28.7, 29.2, 24.6, 28.6] }),
        memory: Some(Memory { total: 17_119_047_680, free: 9_904_599_040, available: 9_904_594_944 }),
        swap: Some(Swap { total: 2_147_479_552, free: 2_147_479_552 }),
        load: Some(Load { one: 0.52, five: 0.4, fifteen: 0.31 }),
        disks: Some(vec![
            Disk {
                name: "/dev/sda1".into(),
                mount: "/".into(),
                filesystem: "ext4".into(),
                usage: Some(DiskUsage { total: 255_482_392_576, free: 62_549_286_912, used: 192_933_105_664 }),
                read_only: Some(false),
                inodes: Some(Inodes { total: 15_597_568, free: 14_000_000 }),
            },
            Disk {
                name: "nas:/export".into(),
                mount: "/mnt/nas".into(),
                filesystem: "nfs4".into(),
                usage: None,
                read_only: None,
                inodes: None,
            },
        ]),
        network: Some(vec![Interface {
            name: "br-lan".into(),
            rx: Counters { bytes: 5_000_000_000, packets: 4_000_000, errors: 0, drops: 12 },
            tx: Counters { bytes: 900_000_000, packets: 1_000_000, errors: 0, drops: 0 },
            rx_bytes_per_second: Some(125_000),
            tx_bytes_per_second: None,
        }]),
        temperatures: Some(vec![Sensor { name: "cpu_thermal".into(), celsius: 48.3 }]),
        host: Some(Host {
            hostname: Some("router".into()),
            os: Some("OpenWrt 23.05.3 r23809-234f1a2efa".into()),
            kernel: Some("5.15.150".into()),
            arch: Some("armv7l".into()),
            model: None,
        }),
        processes: Some(97),
        power: Some(Power {
            source: "get_throttled+rpi_volt",
            throttled_bits: Some(0x50005),
            under_voltage: Some(true),
            frequency_capped: Some(false),
            throttled: Some(true),
            soft_temperature_limit: Some(false),
            under_voltage_since_boot: Some(true),
            frequency_capped_since_boot: Some(false),
            throttled_since_boot: Some(true),
            soft_temperature_limit_since_boot: Some(false),
        }),
        cpu_frequency: Some(vec![
            CoreFrequency { cpu: 0, current_mhz: Some(1800), min_mhz: Some(600), max_mhz: Some(1800) },
            CoreFrequency { cpu: 1, current_mhz: None, min_mhz: Some(600), max_mhz: Some(1800) },
        ]),
        fans: Some(vec![Fan { name: "pwmfan_fan1".into(), rpm: 2968, pwm_percent: Some(29.4) }]),
        disk_io: Some(vec![BlockDevice {
            name: "mmcblk0".into(),
            read_bytes: 1_003_848_704,
            written_bytes: 547_476_480,
            reads: 24_719,
            writes: 12_733,
            read_bytes_per_second: Some(40_960),
            written_bytes_per_second: None,
            reads_per_second: Some(2.5),
            writes_per_second: None,
            busy_percent: Some(0.4),
        }]),
        flash: Some(vec![FlashWear {
            name: "mmcblk0".into(),
            life_time_a: Some(1),
            life_time_b: Some(2),
            pre_eol_info: Some(1),
        }]),
        conntrack: Some(Conntrack { count: 183, max: 16_384 }),
        dhcp_leases: Some(4),
        wifi: Some(vec![Radio {
            name: "phy0-ap0".into(),
            stations: 3,
            signal_min_dbm: Some(-73),
            signal_mean_dbm: Some(-60.3),
            frequency_mhz: Some(2437),
            channel: Some(6),
        }]),
        reboot_required: Some(false),
        own: Own {
            interval_ms: 1000,
            sample_duration_us: 412,
            rss_bytes: Some(1_310_720),
            cpu_time_ms: Some(1234),
            connections_open: 3,
            requests_served: 56_789,
            #[cfg(feature = "push")]
            influx: Some(Pushed { sent: 1200, failed: 3, dropped: 0, queued: 2 }),
            #[cfg(feature = "push")]
            mqtt: None,
        },
        taken_at_us: 1_664_648_079_682_011,
    }
}

/// A server running in this process on 127.0.0.1, stopped when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    pub stats: Arc<Stats>,
    pub latest: Arc<Latest>,
    stop: Option<StopStream>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl TestServer {
    /// Serves the fixed snapshot, freshly taken. Nothing replaces it, so the
    /// interval is an hour: `/health` stays 200 however slowly a test runs (an
    /// emulator runs some 40× slower).
    pub fn fixed(mut settings: Settings) -> TestServer {
        settings.interval = Duration::from_secs(3600);
        let latest = Arc::new(Latest::new(Published::new(&fixed_snapshot(), 1, Instant::now())));
        TestServer::with_latest(latest, settings)
    }

    /// Serves real samples of this machine.
    pub fn sampling(settings: Settings) -> TestServer {
        capture_logs();
        let stats = Arc::new(Stats::default());
        let config = SamplerConfig { stats: Arc::clone(&stats), ..SamplerConfig::new(settings.interval) };
        let latest = sample::start(config).expect("sampler starts");
        TestServer::start(latest, settings, stats)
    }

    pub fn with_latest(latest: Arc<Latest>, settings: Settings) -> TestServer {
        TestServer::start(latest, settings, Arc::default())
    }

    fn start(latest: Arc<Latest>, settings: Settings, stats: Arc<Stats>) -> TestServer {
        // The listener fluxstat itself makes, with its backlog: std's 128 overflows
        // when a test opens hundreds of connections at once on a busy machine, and
        // the kernel's retries (1 s, 2 s, 4 s…) then outlast the test's patience.
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        let listener = fluxstat::socket::listen(addr, false).expect("listen on 127.0.0.1:0");
        TestServer::serve(listener, latest, settings, stats)
    }

    pub fn with_listener(listener: TcpListener, latest: Arc<Latest>, settings: Settings) -> TestServer {
        TestServer::serve(listener, latest, settings, Arc::default())
    }

    fn serve(listener: TcpListener, latest: Arc<Latest>, settings: Settings, stats: Arc<Stats>) -> TestServer {
        capture_logs();
        let addr = listener.local_addr().expect("local addr");
        let (stop, stop_rx) = stop_pair();
        let (l, s) = (Arc::clone(&latest), Arc::clone(&stats));
        let thread = std::thread::spawn(move || {
            let stop_rx = smol::Async::new(stop_rx).expect("async socketpair");
            let shutdown = async move {
                let _ = smol::io::AsyncReadExt::read(&mut &stop_rx, &mut [0u8; 1]).await;
            };
            server::run(vec![listener], l, settings, s, shutdown)
        });
        TestServer { addr, stats, latest, stop: Some(stop), thread: Some(thread) }
    }

    pub fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// Stops the server and returns how long `run` took to return.
    pub fn stop(&mut self) -> Duration {
        let started = Instant::now();
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            t.join().expect("server thread did not panic").expect("server ran");
        }
        started.elapsed()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.stop();
        }
    }
}

/// Two connected sockets: dropping the first ends the reads of the second, which
/// is how a `TestServer` is told to stop. A socketpair where there is one; Windows
/// has none, so a loopback TCP connection there.
#[cfg(unix)]
fn stop_pair() -> (StopStream, StopStream) {
    StopStream::pair().expect("socketpair")
}

#[cfg(windows)]
fn stop_pair() -> (StopStream, StopStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let stop = StopStream::connect(listener.local_addr().expect("local addr")).expect("connect");
    let (stop_rx, _) = listener.accept().expect("accept");
    (stop, stop_rx)
}

/// A parsed response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn has(&self, name: &str) -> bool {
        self.header(name).is_some()
    }

    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("body is UTF-8")
    }

    pub fn json(&self) -> miniserde::json::Value {
        miniserde::json::from_str(self.text()).unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }
}

/// A raw HTTP/1.1 client over one TCP connection.
pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(PATIENCE)).expect("read timeout");
        stream.set_nodelay(true).expect("nodelay");
        Client { stream, buf: Vec::new() }
    }

    pub fn send(&mut self, bytes: &[u8]) -> &mut Client {
        self.stream.write_all(bytes).expect("send");
        self
    }

    pub fn get(&mut self, path: &str) -> Response {
        self.send(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        self.response()
    }

    /// Reads one response to a request that was not HEAD.
    pub fn response(&mut self) -> Response {
        self.read_response(false)
    }

    pub fn read_response(&mut self, head_request: bool) -> Response {
        self.try_response(head_request).expect("a complete response")
    }

    /// Reads one response; `None` if the connection closed before one began.
    pub fn try_response(&mut self, head_request: bool) -> Option<Response> {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut parsed = httparse::Response::new(&mut headers);
            match parsed.parse(&self.buf).expect("response head parses") {
                httparse::Status::Complete(len) => {
                    let status = parsed.code.expect("status code");
                    let headers: Vec<(String, String)> = parsed
                        .headers
                        .iter()
                        .map(|h| (h.name.to_owned(), String::from_utf8_lossy(h.value).into_owned()))
                        .collect();
                    let content_length = headers
                        .iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                        .map(|(_, v)| v.parse::<usize>().expect("numeric Content-Length"));
                    let body_len = if head_request || status == 204 || status == 304 {
                        0
                    } else {
                        content_length.expect("Content-Length on a response with a body")
                    };
                    while self.buf.len() < len + body_len {
                        assert!(self.fill() > 0, "connection closed mid-body");
                    }
                    let body = self.buf[len..len + body_len].to_vec();
                    self.buf.drain(..len + body_len);
                    return Some(Response { status, headers, body });
                }
                httparse::Status::Partial => {
                    if self.fill() == 0 {
                        assert!(
                            self.buf.is_empty(),
                            "connection closed mid-head: {:?}",
                            String::from_utf8_lossy(&self.buf)
                        );
                        return None;
                    }
                }
            }
        }
    }

    fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                n
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => 0,
            Err(e) => panic!("read failed (a hang shows as a timeout): {e}"),
        }
    }

    /// Asserts that the server closes the connection with no further bytes.
    pub fn expect_closed(&mut self) {
        assert_eq!(self.fill(), 0, "expected the server to close, got {:?}", String::from_utf8_lossy(&self.buf));
        assert!(self.buf.is_empty(), "unexpected bytes: {:?}", String::from_utf8_lossy(&self.buf));
    }
}

/// Sends the log lines of servers and samplers run in this process to the test
/// harness, which shows them only for a test that fails. Every in-process server
/// calls it; so must a test that runs a `Sampler` itself. (A spawned binary's
/// stderr is piped into `cli::Running` or `output()` instead.)
pub fn capture_logs() {
    fluxstat::log::capture_for_tests();
}

/// Serialises the tests that load the machine or measure time, CPU or memory,
/// so that they neither disturb nor are disturbed by each other.
pub fn heavy() -> std::sync::MutexGuard<'static, ()> {
    static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());
    HEAVY.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whether the tests run under an emulator (`cross/test-under-qemu.sh`, or wine:
/// `cross/test-under-wine.sh`), where load-sized tests scale their counts down.
pub fn emulated() -> bool {
    std::env::var_os("FLUXSTAT_TEST_RUNNER").is_some_and(|r| !r.is_empty())
        || std::env::var_os("FLUXSTAT_UNDER_WINE").is_some()
}

/// Polls `cond` until it holds or `PATIENCE` runs out.
pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Looks up a path of object keys in a JSON value.
pub fn at<'v>(v: &'v miniserde::json::Value, path: &[&str]) -> &'v miniserde::json::Value {
    let mut cur = v;
    for key in path {
        match cur {
            miniserde::json::Value::Object(o) => {
                cur = o.get(*key).unwrap_or_else(|| panic!("missing key {key} in path {path:?}"));
            }
            _ => panic!("not an object at {key} in path {path:?}"),
        }
    }
    cur
}

pub fn as_u64(v: &miniserde::json::Value) -> u64 {
    match v {
        miniserde::json::Value::Number(miniserde::json::Number::U64(n)) => *n,
        other => panic!("not an unsigned integer: {other:?}"),
    }
}

pub fn as_f64(v: &miniserde::json::Value) -> f64 {
    match v {
        miniserde::json::Value::Number(miniserde::json::Number::F64(n)) => *n,
        miniserde::json::Value::Number(miniserde::json::Number::U64(n)) => *n as f64,
        other => panic!("not a number: {other:?}"),
    }
}

pub fn as_str(v: &miniserde::json::Value) -> &str {
    match v {
        miniserde::json::Value::String(s) => s,
        other => panic!("not a string: {other:?}"),
    }
}
