//! The binary: flags, exit codes, logging, start-up and signals (SPEC §1, §4).

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::support::{as_f64, as_u64, at, Client, PATIENCE};

/// The binary under test, with a clean environment. Under an emulator
/// (`cross/test-under-qemu.sh`), `FLUXSTAT_TEST_RUNNER` names the command that
/// must run it (e.g. `qemu-aarch64-static`): without binfmt_misc an emulated test
/// cannot exec a foreign binary by itself.
pub fn fluxstat() -> Command {
    let mut argv = runner();
    argv.push(env!("CARGO_BIN_EXE_fluxstat").to_owned());
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    cmd.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    // The emulator's own settings (QEMU_LD_PREFIX in cross's images) survive env_clear.
    cmd.envs(std::env::vars().filter(|(k, _)| k.starts_with("QEMU_")));
    // Winsock does not start without SystemRoot. A console of its own, so that
    // a test can send it console events (`Running::console_event`).
    #[cfg(windows)]
    {
        use std::os::windows::process::CommandExt;
        const CREATE_NEW_CONSOLE: u32 = 0x10;
        cmd.envs(std::env::vars().filter(|(k, _)| k.eq_ignore_ascii_case("SystemRoot")));
        cmd.creation_flags(CREATE_NEW_CONSOLE);
    }
    cmd
}

/// The words of `FLUXSTAT_TEST_RUNNER`, empty when the tests run natively.
pub fn runner() -> Vec<String> {
    std::env::var("FLUXSTAT_TEST_RUNNER").unwrap_or_default().split_whitespace().map(str::to_owned).collect()
}

/// A running binary whose stderr lines are collected by a thread.
pub struct Running {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl Running {
    pub fn start(cmd: &mut Command) -> Running {
        let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("spawn fluxstat");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running { child, lines, seen: Vec::new() }
    }

    /// Waits for a stderr line containing `needle` and returns it.
    pub fn line_with(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!("no stderr line with {needle:?}; saw {:?}", self.seen),
            }
        }
    }

    pub fn listening_addr(&mut self) -> SocketAddr {
        self.listening().0
    }

    /// The next "listening on ADDR (FAMILIES)" line: the address and what follows it.
    pub fn listening(&mut self) -> (SocketAddr, String) {
        let line = self.line_with(" listening on ");
        let rest = line.rsplit(" listening on ").next().unwrap_or("").trim();
        let (addr, families) = rest.split_once(' ').unwrap_or((rest, ""));
        (addr.parse().unwrap_or_else(|_| panic!("address in the log line: {line}")), families.to_owned())
    }

    /// Windows: sends a console event (`CTRL_C_EVENT`…) to fluxstat's console,
    /// from a helper process (tests/it/windows.rs, `console_event_helper`).
    #[cfg(windows)]
    pub fn console_event(&self, event: u32) {
        let exe = std::env::current_exe().expect("the test binary");
        let out = Command::new(exe)
            .args(["--ignored", "--exact", "windows::console_event_helper", "--test-threads=1"])
            .env("FLUXSTAT_CONSOLE_EVENT", format!("{event} {}", self.child.id()))
            .output()
            .expect("the helper runs");
        assert!(out.status.success(), "helper: {}", String::from_utf8_lossy(&out.stdout));
    }

    /// SIGTERM and SIGINT; on Windows the console's Ctrl-C stands in for both.
    #[cfg(windows)]
    pub fn signal(&self, _name: &str) {
        self.console_event(0);
    }

    #[cfg(not(windows))]
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill").arg(format!("-{name}")).arg(self.child.id().to_string()).status();
        assert!(status.expect("kill runs").success());
    }

    pub fn wait_exit(&mut self) -> (i32, Duration) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return (status.code().expect("exit code, not a signal"), started.elapsed());
            }
            assert!(started.elapsed() < PATIENCE, "fluxstat did not exit");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Running {
    /// Every stderr line, once the process has exited and its stderr closed.
    pub fn all_lines(&mut self) -> Vec<String> {
        while let Ok(line) = self.lines.recv_timeout(PATIENCE) {
            self.seen.push(line);
        }
        self.seen.clone()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn version_and_help() {
    let out = fluxstat().arg("--version").output().expect("runs");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("fluxstat {}", env!("CARGO_PKG_VERSION")));

    let out = fluxstat().arg("--help").output().expect("runs");
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--listen",
        "--interval",
        "--cors-origin",
        "--max-connections",
        "--request-timeout",
        "--idle-timeout",
        "--disk-exclude-fs",
        "--disk-exclude-mount",
        "--log-level",
        "FLUXSTAT_INTERVAL",
        "[default: 1s]",
        "[default: [::]:8001]",
    ] {
        assert!(help.contains(flag), "help lacks {flag}");
    }
    // The push options are listed only by a build that has them.
    assert_eq!(help.contains("--influx-url"), cfg!(feature = "push"), "{help}");
    assert_eq!(help.contains("FLUXSTAT_MQTT"), cfg!(feature = "push"), "{help}");
}

/// Without the `push` feature, a push option (flag or variable) is a usage error
/// that says how to get a build with pushing, never an option that does nothing.
#[cfg(not(feature = "push"))]
#[test]
fn push_options_need_the_push_feature() {
    let why = "this fluxstat was built without pushing: install the fluxstat-push package or release file, or build with `cargo build --release --features push`";
    for name in [
        "influx-url",
        "influx-token-file",
        "mqtt",
        "mqtt-credentials-file",
        "mqtt-discovery-prefix",
        "push-interval",
        "push-backlog",
    ] {
        let flag = format!("--{name}");
        expect_usage_error(&[&flag, "x"], &[], &format!("{flag}: {why}"));
        expect_usage_error(&[&format!("{flag}=http://127.0.0.1:1/write?db=x")], &[], &format!("{flag}: {why}"));
        let var = format!("FLUXSTAT_{}", name.to_ascii_uppercase().replace('-', "_"));
        expect_usage_error(&["--listen", "127.0.0.1:0"], &[(&var, "x")], &format!("{var}: {why}"));
    }
}

#[test]
fn usage_errors_exit_2_with_one_line() {
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let table: &[Case<'_>] = &[
        (&["--bogus"], &[], "unknown option '--bogus'"),
        (&["--interval", "100ms"], &[], "--interval: '100ms' is outside 200ms..1h"),
        (&["--listen", "nowhere"], &[], "is not ADDR:PORT"),
        (
            &["--listen", "9000"],
            &[],
            "'9000' is not ADDR:PORT (e.g. :8001, 0.0.0.0:8001, [::1]:8001, localhost:8001) (for every address: :9000)",
        ),
        (&["--max-connections"], &[], "--max-connections needs a value"),
        (&[], &[("FLUXSTAT_INTERVAL", "fast")], "FLUXSTAT_INTERVAL: 'fast' is not a duration"),
    ];
    for (args, env, want) in table {
        expect_usage_error(args, env, want);
    }
}

#[test]
fn security_options_set_empty_fail_closed() {
    // An unset systemd specifier or an empty variable must not turn auth off or
    // widen where fluxstat listens.
    expect_usage_error(&["--token-file", ""], &[], "--token-file: the path is empty");
    expect_usage_error(&["--token-file="], &[], "--token-file: the path is empty");
    expect_usage_error(&[], &[("FLUXSTAT_TOKEN_FILE", "")], "FLUXSTAT_TOKEN_FILE: the path is empty");
    expect_usage_error(&[], &[("FLUXSTAT_ALLOW", "")], "FLUXSTAT_ALLOW: the list is empty");
    expect_usage_error(&[], &[("FLUXSTAT_LISTEN", "")], "FLUXSTAT_LISTEN: an empty address");
    expect_usage_error(&["--listen", ""], &[], "--listen: an empty address");
}

#[test]
fn listen_duplicates_and_overlaps_are_usage_errors() {
    let table: &[(&[&str], &str)] = &[
        (&["--listen", "127.0.0.1:8123", "--listen", "127.0.0.1:8123"], "127.0.0.1:8123 is given twice"),
        (&["--listen", "[::]:8123", "--listen", ":8123"], "[::]:8123 is given twice"),
        (
            &["--listen", "0.0.0.0:8123", "--listen", "[::]:8123"],
            "'0.0.0.0:8123' and '[::]:8123' overlap on port 8123: [::]:8123 already takes every IPv4 and IPv6 address",
        ),
        (&["--listen", "localhost:8123", "--listen", "127.0.0.1:8123"], "overlap on port 8123"),
    ];
    for (args, want) in table {
        expect_usage_error(args, &[], want);
    }
}

/// Whether this machine can connect to `addr` at all (no ::1 on some CI hosts).
fn reachable(addr: SocketAddr) -> bool {
    std::net::TcpStream::connect_timeout(&addr, PATIENCE).is_ok()
}

#[test]
fn an_explicit_ipv6_wildcard_and_a_bare_port_take_ipv4_too() {
    for spec in ["[::]:0", ":0"] {
        let mut run = Running::start(fluxstat().args(["--listen", spec]));
        let (addr, families) = run.listening();
        assert!(addr.ip().is_unspecified(), "{spec}: {addr}");
        let v4 = SocketAddr::from(([127, 0, 0, 1], addr.port()));
        assert_eq!(Client::connect(v4).get("/metrics").status, 200, "{spec}: IPv4 is served");
        if addr.is_ipv6() {
            assert_eq!(families, "(IPv4 and IPv6)", "{spec}: the log says it is dual-stack");
            let v6 = SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, addr.port()));
            if reachable(v6) {
                assert_eq!(Client::connect(v6).get("/metrics").status, 200, "{spec}: IPv6 is served");
            }
        } else {
            assert_eq!(families, "(IPv4 only)", "{spec}: a kernel without IPv6");
        }
    }
}

#[test]
fn localhost_is_both_loopbacks_without_dns() {
    // The config maps the name to the loopbacks itself (no resolver is asked, so a
    // broken /etc/hosts or DNS cannot change it): 127.0.0.1 first, then ::1.
    let mut run = Running::start(fluxstat().args(["--listen", "localhost:0"]));
    let (first, _) = run.listening();
    assert_eq!(first.ip(), std::net::Ipv4Addr::LOCALHOST);
    assert_eq!(Client::connect(first).get("/metrics").status, 200);
    let v6 = SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, first.port()));
    if reachable(v6) {
        let (second, _) = run.listening();
        assert_eq!(second, v6);
        assert_eq!(Client::connect(second).get("/metrics").status, 200);
    }
}

/// Runs the binary and checks it fails as a usage error: exit 2, nothing on stdout,
/// one line on stderr that says `want`.
/// A binary that accepted the options and serves is stopped, so the test fails
/// instead of hanging.
pub fn expect_usage_error(args: &[&str], env: &[(&str, &str)], want: &str) {
    let mut cmd = fluxstat();
    let child = cmd.args(args).envs(env.iter().copied()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn();
    let mut child = child.expect("runs");
    let started = Instant::now();
    while child.try_wait().expect("try_wait").is_none() {
        if started.elapsed() > PATIENCE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{args:?} {env:?}: still running after {PATIENCE:?}, so the options were accepted");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = child.wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("fluxstat: ") && stderr.contains(want), "{args:?}: {stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn a_busy_port_exits_1_naming_the_address() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let out = fluxstat().args(["--listen", &addr.to_string()]).output().expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("cannot listen on {addr}")), "{stderr}");
}

#[test]
fn serves_real_figures_from_the_first_response_and_stops_on_sigterm() {
    let started = Instant::now();
    let mut run = Running::start(fluxstat().args(["--listen", "127.0.0.1:0", "--log-level", "debug"]));
    let addr = run.listening_addr();
    let r = Client::connect(addr).get("/metrics");
    let first = started.elapsed();
    assert_eq!(r.status, 200);
    let cpu = as_f64(at(&r.json(), &["system", "cpu", "cpu_usage_percentage"]));
    assert!((0.0..=100.0).contains(&cpu));
    // SPEC §1: serving within a second (generous here for emulated test runs).
    assert!(first < Duration::from_secs(5), "first response after {first:?}");

    let mut idle = Client::connect(addr);
    assert_eq!(idle.get("/health").status, 200);
    run.signal("TERM");
    let (code, took) = run.wait_exit();
    assert_eq!(code, 0);
    assert!(took < Duration::from_secs(2), "exit took {took:?}");
    idle.expect_closed();
    // Every log line is one event: timestamp, level, message.
    run.line_with("stopped");
    for line in &run.seen {
        let mut parts = line.splitn(3, ' ');
        let (stamp, level) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        assert!(stamp.len() == 20 && stamp.ends_with('Z'), "{line}");
        assert!(["ERROR", "WARN", "INFO", "DEBUG"].contains(&level), "{line}");
        assert!(!line.contains('\x1b'), "no colour: {line}");
    }
}

#[test]
fn sigint_and_environment_configuration() {
    let mut run = Running::start(fluxstat().env("FLUXSTAT_LISTEN", "127.0.0.1:0").env("FLUXSTAT_CORS_ORIGIN", "*"));
    let addr = run.listening_addr();
    let r = Client::connect(addr).get("/metrics");
    assert_eq!(r.header("Access-Control-Allow-Origin"), Some("*"));
    run.signal("INT");
    assert_eq!(run.wait_exit().0, 0);
}

#[test]
fn unknown_environment_variables_are_warned_about() {
    let mut run = Running::start(fluxstat().args(["--listen", "127.0.0.1:0"]).env("FLUXSTAT_INTERVALL", "5s"));
    let line = run.line_with("FLUXSTAT_INTERVALL");
    assert!(line.contains("WARN"), "{line}");
}

#[test]
fn several_listen_addresses() {
    let mut run = Running::start(fluxstat().args(["--listen", "127.0.0.1:0", "--listen", "127.0.0.1:0"]));
    let a = run.listening_addr();
    let b = run.listening_addr();
    assert_ne!(a, b);
    assert_eq!(Client::connect(a).get("/metrics").status, 200);
    assert_eq!(Client::connect(b).get("/metrics").status, 200);
}

#[test]
fn no_arguments_serves_on_port_8001_dual_stack() {
    // Needs port 8001 free on this machine, as on a fresh CI runner.
    let probe = TcpListener::bind("[::]:8001").or_else(|_| TcpListener::bind("0.0.0.0:8001"));
    assert!(probe.is_ok(), "port 8001 is in use on this machine; stop whatever holds it to run this test");
    drop(probe);
    let mut run = Running::start(&mut fluxstat());
    let addr = run.listening_addr();
    assert_eq!(addr.port(), 8001);
    let v4: SocketAddr = "127.0.0.1:8001".parse().expect("addr");
    assert_eq!(Client::connect(v4).get("/metrics").status, 200);
    if addr.is_ipv6() {
        let v6: SocketAddr = "[::1]:8001".parse().expect("addr");
        assert_eq!(Client::connect(v6).get("/metrics").status, 200);
    }
}

#[test]
fn procfs_and_sysfs_point_the_readers_at_another_tree() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/openwrt");
    let procfs = root.join("proc");
    let sysfs = root.join("sys");
    let mut run = Running::start(fluxstat().args(["--listen", "127.0.0.1:0", "--net-exclude", "lo,wan"]).args([
        "--procfs".as_ref(),
        procfs.as_os_str(),
        "--sysfs".as_ref(),
        sysfs.as_os_str(),
    ]));
    let addr = run.listening_addr();
    let r = Client::connect(addr).get("/metrics");
    let doc = r.json();
    assert_eq!(as_u64(at(&doc, &["system", "uptime"])), 1_209_600);
    let miniserde::json::Value::Object(ifs) = at(&doc, &["system", "network"]) else { panic!("object") };
    assert_eq!(ifs.keys().cloned().collect::<Vec<_>>(), ["br-lan", "eth0", "lan1", "phy0-ap0"]);
    assert_eq!(as_f64(at(&doc, &["system", "temperature", "cpu_thermal"])), 51.7);
    assert_eq!(as_u64(at(&doc, &["system", "processes", "processes_total"])), 5);
    assert_eq!(as_u64(at(&doc, &["system", "memory", "memory_available"])), 131_432 * 1024);
}

#[test]
fn a_cors_origin_copied_from_the_address_bar_is_accepted_and_normalised() {
    let mut run =
        Running::start(fluxstat().args(["--listen", "127.0.0.1:0", "--cors-origin", "HTTP://Grafana.LAN:8123/"]));
    let addr = run.listening_addr();
    let mut c = Client::connect(addr);
    c.send(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://grafana.lan:8123\r\n\r\n");
    let r = c.response();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Access-Control-Allow-Origin"), Some("http://grafana.lan:8123"));
}

#[test]
fn an_interface_named_in_net_include_is_listed() {
    let procfs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/openwrt/proc");
    let interfaces = |args: &[&str]| -> Vec<String> {
        let mut run =
            Running::start(fluxstat().args(["--listen", "127.0.0.1:0"]).args(args).arg("--procfs").arg(&procfs));
        let doc = Client::connect(run.listening_addr()).get("/metrics").json();
        let miniserde::json::Value::Object(ifs) = at(&doc, &["system", "network"]) else { panic!("object") };
        ifs.keys().cloned().collect()
    };
    assert_eq!(interfaces(&["--net-include", "lo"]), ["lo"]);
    assert_eq!(interfaces(&["--net-include", "lo,wan"]), ["lo", "wan"]);
    assert_eq!(interfaces(&["--net-include", "lo,wan", "--net-exclude", "wan"]), ["lo"]);
    assert!(!interfaces(&[]).contains(&"lo".to_owned()), "lo is left out by default");
}

/// The jq program of the README's `updated_at` recipe.
fn readme_jq_recipe() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md");
    let line = readme.lines().find(|l| l.contains("fromdateiso8601)'")).expect("the jq recipe in README.md");
    let program = line.split_once("jq '").map(|(_, p)| p).expect("jq '...'");
    program.strip_suffix('\'').expect("the program ends the line").to_owned()
}

#[test]
fn the_readme_jq_recipe_reads_updated_at() {
    // jq is a host program; CI installs it (.ci/run), elsewhere the test says it skipped.
    let jq = |program: &str, input: &[u8]| -> Option<std::process::Output> {
        let mut child = Command::new("jq")
            .arg(program)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .ok()?;
        std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), input).expect("feed jq");
        Some(child.wait_with_output().expect("jq runs"))
    };
    if jq(".", b"{}").is_none() {
        assert!(std::env::var_os("CI").is_none(), "CI must install jq (.ci/run)");
        eprintln!("skipped: no jq on this machine");
        return;
    }
    let mut run = Running::start(fluxstat().args(["--listen", "127.0.0.1:0"]));
    let body = Client::connect(run.listening_addr()).get("/metrics").body;
    let before = jq(".updated_at | fromdateiso8601", &body).expect("jq");
    assert!(!before.status.success(), "plain fromdateiso8601 parses updated_at now: simplify the README");
    let out = jq(&readme_jq_recipe(), &body).expect("jq");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let age: f64 = text.trim().parse().unwrap_or_else(|_| panic!("a number of seconds: {text}"));
    // The sample was taken at start-up, moments ago; whole seconds, so at most 1 s in the future.
    assert!((-1.0..PATIENCE.as_secs_f64() * 3.0).contains(&age), "age {age}");
}
