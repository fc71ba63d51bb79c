//! Issue 10, the sampler at the edges: a sensor file that blocks (a FIFO standing
//! in for a wedged hwmon driver) or never ends (`/dev/zero`), signals before the
//! first sample, `/health`'s rule for families fluxstat itself cannot read, and
//! what `--log-level debug` says about a missing figure. Real binary, fixture
//! `--sysfs`/`--procfs` trees, real sockets on 127.0.0.1.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use miniserde::json::Value;

use fluxstat::published::{Latest, Published};

use crate::cli::{fluxstat, Running};
use crate::support::{as_f64, as_str, at, emulated, fixed_snapshot, settings, wait_for, Client, TestServer};

/// A fresh directory for one test's fixture tree.
fn tree(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fluxstat-sampling-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn write(path: &Path, content: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("dirs");
    std::fs::write(path, content).expect("write fixture file");
}

/// A sysfs tree with one good thermal zone and an hwmon chip `stuck` whose
/// temp1_input is a FIFO nobody writes: reading it blocks, as a wedged driver does.
fn sysfs_with_a_blocking_sensor(name: &str) -> (PathBuf, PathBuf) {
    let sys = tree(name);
    write(&sys.join("class/thermal/thermal_zone0/type"), "cpu-thermal\n");
    write(&sys.join("class/thermal/thermal_zone0/temp"), "48312\n");
    write(&sys.join("class/hwmon/hwmon0/name"), "stuck\n");
    let fifo = sys.join("class/hwmon/hwmon0/temp1_input");
    rustix::fs::mknodat(rustix::fs::CWD, &fifo, rustix::fs::FileType::Fifo, rustix::fs::Mode::from(0o644), 0)
        .expect("mkfifo");
    (sys, fifo)
}

fn health(addr: std::net::SocketAddr) -> (u16, Value) {
    let r = Client::connect(addr).get("/health");
    (r.status, r.json())
}

fn temperature(addr: std::net::SocketAddr) -> Value {
    at(&Client::connect(addr).get("/metrics").json(), &["system", "temperature"]).clone()
}

/// SIGTERM ends the process cleanly within the promised 2 s.
fn term_ends_it_within_2s(run: &mut Running) {
    run.signal("TERM");
    let (code, took) = run.wait_exit();
    assert_eq!(code, 0);
    assert!(took < Duration::from_secs(2), "exit took {took:?}");
}

fn lines_with(run: &Running, needle: &str) -> usize {
    run.seen.iter().filter(|l| l.contains(needle)).count()
}

// Issue 10, item 9: a sensor read that blocks stalled the first sample (the port
// never opened) and later froze sampling.
#[test]
fn a_blocking_sensor_neither_delays_start_up_nor_stalls_sampling() {
    let (sys, fifo) = sysfs_with_a_blocking_sensor("fifo");
    let started = Instant::now();
    let mut run =
        Running::start(fluxstat().args(["--listen", "127.0.0.1:0"]).args(["--sysfs".as_ref(), sys.as_os_str()]));
    let addr = run.listening_addr();
    let opened = started.elapsed();
    // 200 ms of CPU window plus the 500 ms deadline; an emulator is far slower.
    let bound = if emulated() { Duration::from_secs(8) } else { Duration::from_millis(1500) };
    assert!(opened < bound, "the port opened after {opened:?}");

    let doc = Client::connect(addr).get("/metrics").json();
    assert!(matches!(at(&doc, &["system", "temperature"]), Value::Null), "temperature is null while stuck");
    assert!(matches!(at(&doc, &["system", "cpu"]), Value::Object(_)), "the other families are served");
    assert!(matches!(at(&doc, &["system", "memory"]), Value::Object(_)));

    // Sampling goes on: samples keep coming, each degraded, none stale.
    let (status, first) = health(addr);
    assert_eq!(status, 503);
    assert_eq!(as_str(at(&first, &["message"])), "degraded: temperature");
    let first_at = as_str(at(&first, &["updated_at"])).to_owned();
    wait_for("a later sample", || as_str(at(&health(addr).1, &["updated_at"])) != first_at);
    let (status, later) = health(addr);
    assert_eq!((status, as_str(at(&later, &["message"]))), (503, "degraded: temperature"));
    let Value::Array(unavailable) = at(&later, &["unavailable"]) else { panic!("unavailable is an array") };
    assert_eq!(unavailable.iter().map(as_str).collect::<Vec<_>>(), ["temperature"]);

    // The driver answers at last, and the sensor is a plain file from then on.
    let mut writer = None;
    wait_for("the stuck reader's end of the FIFO", || {
        // Non-blocking: fails (ENXIO) until the sensors thread has the FIFO open.
        writer = OpenOptions::new().write(true).custom_flags(libc_o_nonblock()).open(&fifo).ok();
        writer.is_some()
    });
    let plain = sys.join("class/hwmon/hwmon0/temp1_input.new");
    write(&plain, "45000\n");
    std::fs::rename(&plain, &fifo).expect("replace the FIFO");
    let mut w = writer.expect("FIFO open for writing");
    w.write_all(b"40000\n").expect("write to the FIFO");
    drop(w);
    wait_for("the temperatures back", || matches!(temperature(addr), Value::Object(_)));
    let t = temperature(addr);
    assert_eq!(as_f64(at(&t, &["cpu_thermal"])), 48.3);
    assert_eq!(as_f64(at(&t, &["stuck_temp1"])), 45.0);
    assert_eq!(health(addr).0, 200);

    run.line_with("temperature figures available again");
    assert_eq!(lines_with(&run, "temperature readers did not answer within"), 1, "one warning: {:?}", run.seen);
    term_ends_it_within_2s(&mut run);
    let _ = std::fs::remove_dir_all(&sys);
}

// Issue 14: the new driver-backed families (the Pi firmware's get_throttled, fans)
// run under the same deadline: a firmware file that blocks neither delays
// start-up nor stalls sampling, and they come back when it answers.
#[test]
fn a_blocking_firmware_file_is_under_the_deadline_with_the_sensors() {
    let sys = tree("firmware");
    write(&sys.join("class/thermal/thermal_zone0/type"), "cpu-thermal\n");
    write(&sys.join("class/thermal/thermal_zone0/temp"), "48312\n");
    write(&sys.join("class/hwmon/hwmon0/name"), "pwmfan\n");
    write(&sys.join("class/hwmon/hwmon0/fan1_input"), "2968\n");
    write(&sys.join("class/hwmon/hwmon0/pwm1"), "75\n");
    let fifo = sys.join("devices/platform/soc/soc:firmware/get_throttled");
    std::fs::create_dir_all(fifo.parent().expect("parent")).expect("dirs");
    rustix::fs::mknodat(rustix::fs::CWD, &fifo, rustix::fs::FileType::Fifo, rustix::fs::Mode::from(0o644), 0)
        .expect("mkfifo");
    let started = Instant::now();
    let mut run =
        Running::start(fluxstat().args(["--listen", "127.0.0.1:0"]).args(["--sysfs".as_ref(), sys.as_os_str()]));
    let addr = run.listening_addr();
    let bound = if emulated() { Duration::from_secs(8) } else { Duration::from_millis(1500) };
    assert!(started.elapsed() < bound, "the port opened after {:?}", started.elapsed());
    let doc = Client::connect(addr).get("/metrics").json();
    for family in ["temperature", "fans", "power"] {
        assert!(matches!(at(&doc, &["system", family]), Value::Null), "{family} is null while stuck");
    }
    assert!(matches!(at(&doc, &["system", "memory"]), Value::Object(_)), "the other families are served");
    assert_eq!(health(addr).0, 503);

    let mut writer = None;
    wait_for("the stuck reader's end of the FIFO", || {
        writer = OpenOptions::new().write(true).custom_flags(libc_o_nonblock()).open(&fifo).ok();
        writer.is_some()
    });
    let plain = fifo.with_extension("new");
    write(&plain, "50005\n");
    std::fs::rename(&plain, &fifo).expect("replace the FIFO");
    let mut w = writer.expect("FIFO open for writing");
    w.write_all(b"0\n").expect("write to the FIFO");
    drop(w);
    wait_for("power back", || {
        matches!(at(&Client::connect(addr).get("/metrics").json(), &["system", "power"]), Value::Object(_))
    });
    let doc = Client::connect(addr).get("/metrics").json();
    let power = at(&doc, &["system", "power"]);
    assert_eq!(as_str(at(power, &["source"])), "get_throttled");
    assert!(matches!(at(power, &["under_voltage"]), Value::Bool(true)), "0x50005: under-voltage now");
    assert!(matches!(at(power, &["throttled_since_boot"]), Value::Bool(true)));
    assert_eq!(as_f64(at(&doc, &["system", "fans", "pwmfan_fan1", "pwm_percentage"])), 29.4);
    assert_eq!(health(addr).0, 200);
    run.signal("TERM");
    assert_eq!(run.wait_exit().0, 0);
    let _ = std::fs::remove_dir_all(&sys);
}

/// O_NONBLOCK, which std does not name.
fn libc_o_nonblock() -> i32 {
    rustix::fs::OFlags::NONBLOCK.bits() as i32
}

// Issue 10, item 9: SIGTERM before the first sample was in waited 602 s.
#[test]
fn sigterm_while_the_first_sample_is_taken_ends_the_process_within_2s() {
    let (sys, _fifo) = sysfs_with_a_blocking_sensor("early-term");
    // A 10 s interval gives the readers a 1 s deadline: the first sample takes
    // over 1.2 s, and the signal arrives well inside it.
    let mut run = Running::start(
        fluxstat()
            .args(["--listen", "127.0.0.1:0", "--interval", "10s", "--log-level", "debug"])
            .args(["--sysfs".as_ref(), sys.as_os_str()]),
    );
    run.line_with("taking the first sample");
    term_ends_it_within_2s(&mut run);
    let lines = run.all_lines();
    assert!(!lines.iter().any(|l| l.contains("listening on")), "it stopped before listening: {lines:?}");
    assert!(lines.iter().any(|l| l.contains("INFO received SIGTERM during start-up")), "{lines:?}");
    let _ = std::fs::remove_dir_all(&sys);
}

// Issue 10, item 9: SIGTERM ends the process within 2 s in every state, also
// while serving with a sensor read stuck on the helper thread.
#[test]
fn sigterm_while_a_sensor_read_is_stuck_ends_the_process_within_2s() {
    let (sys, _fifo) = sysfs_with_a_blocking_sensor("stuck-term");
    let mut run =
        Running::start(fluxstat().args(["--listen", "127.0.0.1:0"]).args(["--sysfs".as_ref(), sys.as_os_str()]));
    let addr = run.listening_addr();
    assert_eq!(health(addr).0, 503, "the sensor read is stuck");
    term_ends_it_within_2s(&mut run);
    let _ = std::fs::remove_dir_all(&sys);
}

// Issue 10, item 9: a sensor file that never ends was read until 508 MiB.
#[test]
fn a_sensor_file_that_never_ends_is_read_no_further_than_a_page() {
    let sys = tree("zero");
    write(&sys.join("class/thermal/thermal_zone0/type"), "cpu-thermal\n");
    write(&sys.join("class/thermal/thermal_zone0/temp"), "48312\n");
    write(&sys.join("class/hwmon/hwmon0/name"), "endless\n");
    std::os::unix::fs::symlink("/dev/zero", sys.join("class/hwmon/hwmon0/temp1_input")).expect("symlink");
    write(&sys.join("class/hwmon/hwmon1/name"), "nvme\n");
    write(&sys.join("class/hwmon/hwmon1/temp1_input"), "38850\n");
    let mut run =
        Running::start(fluxstat().args(["--listen", "127.0.0.1:0"]).args(["--sysfs".as_ref(), sys.as_os_str()]));
    let addr = run.listening_addr();
    // Natively the first sample has them; an emulator can be slower than the
    // readers' deadline at first, which the next samples make up for.
    let mut t = temperature(addr);
    if emulated() {
        wait_for("the temperatures", || {
            t = temperature(addr);
            matches!(t, Value::Object(_))
        });
    }
    let Value::Object(sensors) = &t else { panic!("temperatures: {t:?}") };
    assert_eq!(sensors.keys().map(String::as_str).collect::<Vec<_>>(), ["cpu_thermal", "nvme_temp1"]);
    if emulated() {
        wait_for("/health 200", || health(addr).0 == 200);
    }
    assert_eq!(health(addr).0, 200);
    if !emulated() {
        // Under qemu-user the figure would be the emulator's.
        let peak = peak_rss_kib(run.child.id());
        assert!(peak < 16 * 1024, "peak RSS {peak} KiB");
    }
    run.signal("TERM");
    assert_eq!(run.wait_exit().0, 0);
    let _ = std::fs::remove_dir_all(&sys);
}

// Issue 10, item 10: /health said 200 OK while families were null for reasons of
// fluxstat's own. The rule: stale → 503; degraded → 503 naming the families;
// families the machine lacks are listed but keep 200.
#[test]
fn health_is_503_naming_the_families_fluxstat_cannot_read() {
    let mut s = fixed_snapshot();
    s.temperatures = None;
    s.disks = None;
    let latest = Arc::new(Latest::new(Published::with_health(&s, 1, Instant::now(), &["disk"])));
    let server = TestServer::with_latest(Arc::clone(&latest), settings());
    let r = server.connect().get("/health");
    let body = r.json();
    assert_eq!((r.status, as_u16(at(&body, &["status"]))), (503, 503));
    assert_eq!(as_str(at(&body, &["message"])), "degraded: disk");
    let Value::Array(unavailable) = at(&body, &["unavailable"]) else { panic!("array") };
    assert_eq!(unavailable.iter().map(as_str).collect::<Vec<_>>(), ["disk", "temperature"]);

    // Only what the machine lacks: listed, and still 200.
    latest.store(Published::with_health(&s, 2, Instant::now(), &[]));
    let r = server.connect().get("/health");
    assert_eq!((r.status, as_str(at(&r.json(), &["message"]))), (200, "OK"));

    // Stale beats degraded.
    let old = Instant::now().checked_sub(Duration::from_secs(10)).expect("monotonic clock past 10 s");
    latest.store(Published::with_health(&s, 3, old, &["disk"]));
    let r = server.connect().get("/health");
    assert_eq!((r.status, as_str(at(&r.json(), &["message"]))), (503, "Last sample is stale"));
}

/// VmHWM of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM");
    line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("a number")
}

fn as_u16(v: &Value) -> u16 {
    u16::try_from(crate::support::as_u64(v)).expect("a status code")
}

// Issue 10, item 13: at debug, a missing figure says which file and why, and each
// sample says how long it took.
#[test]
fn debug_logs_say_which_file_is_missing_and_how_long_a_sample_took() {
    let proc = tree("debug-proc");
    let mut run = Running::start(
        fluxstat()
            .args(["--listen", "127.0.0.1:0", "--log-level", "debug"])
            .args(["--procfs".as_ref(), proc.as_os_str()]),
    );
    let line = run.line_with("memory: cannot read");
    assert!(line.contains(" DEBUG "), "{line}");
    let path = proc.join("meminfo");
    assert!(line.contains(&format!("{}: No such file or directory (os error 2)", path.display())), "{line}");
    let took = run.line_with("sample took ");
    let us: u64 = took.rsplit("sample took ").next().and_then(|t| t.split(' ').next()?.parse().ok()).expect("µs");
    assert!(us > 0 && us < 10_000_000, "{took}");
    run.line_with("listening on");
    run.signal("TERM");
    assert_eq!(run.wait_exit().0, 0);
    let _ = std::fs::remove_dir_all(&proc);
}
