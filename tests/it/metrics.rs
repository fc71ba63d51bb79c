//! The `/metrics` document: the golden file for a fixed snapshot, and the real
//! document checked against /proc on this machine.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use miniserde::json::Value;

use fluxstat::snapshot::Snapshot;

use crate::support::{as_f64, as_str, as_u64, at, fixed_snapshot, settings, TestServer};

fn golden_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/metrics.json")
}

#[test]
fn golden_document_for_a_fixed_snapshot() {
    let got = String::from_utf8(fluxstat::wire::encode(&fixed_snapshot())).expect("UTF-8");
    // After a deliberate change of the shape: FLUXSTAT_UPDATE_GOLDEN=1 cargo test golden
    if std::env::var_os("FLUXSTAT_UPDATE_GOLDEN").is_some() {
        std::fs::write(golden_path(), format!("{got}\n")).expect("write golden file");
    }
    let want = std::fs::read_to_string(golden_path()).expect("golden file");
    // The golden file is the `push` feature's document (an InfluxDB pusher's
    // counters); without the feature both pushers are always off, `null`.
    let pushed = r#""push":{"influx":{"sent":1200,"failed":3,"dropped":0,"queued":2},"mqtt":null}"#;
    assert!(want.contains(pushed), "{want}");
    let want =
        if cfg!(feature = "push") { want } else { want.replace(pushed, r#""push":{"influx":null,"mqtt":null}"#) };
    assert_eq!(got, want.trim_end());
}

#[test]
fn failed_families_are_null_and_the_rest_is_served() {
    let s = Snapshot {
        uptime: None,
        cpu: None,
        memory: None,
        swap: None,
        load: None,
        disks: None,
        network: None,
        temperatures: None,
        host: None,
        processes: None,
        power: None,
        cpu_frequency: None,
        fans: None,
        disk_io: None,
        flash: None,
        conntrack: None,
        dhcp_leases: None,
        wifi: None,
        reboot_required: None,
        ..fixed_snapshot()
    };
    let doc = String::from_utf8(fluxstat::wire::encode(&s)).expect("UTF-8");
    assert!(
        doc.starts_with(
            r#"{"system":{"uptime":null,"cpu":null,"memory":null,"disk":null,"swap":null,"load":null,"network":null,"temperature":null,"host":null,"processes":null,"power":null,"cpu_frequency":null,"fans":null,"disk_io":null,"flash":null,"conntrack":null,"dhcp":null,"wifi":null,"reboot_required":null},"fluxstat":{"version":"#
        ),
        "{doc}"
    );
    assert!(doc.ends_with(r#","updated_at":"2022-10-01T18:14:39.682011+00:00"}"#), "{doc}");
    assert_eq!(s.unavailable().len(), 10);
}

fn proc_file(name: &str) -> String {
    std::fs::read_to_string(format!("/proc/{name}")).expect("readable /proc file")
}

fn meminfo_bytes(key: &str) -> u64 {
    let meminfo = proc_file("meminfo");
    let line = meminfo.lines().find(|l| l.starts_with(&format!("{key}:"))).expect("meminfo key");
    let kib: u64 = line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("number");
    kib * 1024
}

/// `2026-11-25T18:14:39.682011+00:00` → microseconds since the epoch, checked field by field.
fn parse_updated_at(s: &str) -> i64 {
    let b = s.as_bytes();
    assert_eq!(b.len(), 32, "{s}");
    for (i, c) in [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':'), (19, b'.')] {
        assert_eq!(b[i], c, "{s}");
    }
    assert!(s.ends_with("+00:00"), "{s}");
    let n = |r: std::ops::Range<usize>| s[r].parse::<i64>().unwrap_or_else(|_| panic!("digits in {s}"));
    let (y, mo, d) = (n(0..4), n(5..7), n(8..10));
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * (if mo > 2 { mo - 3 } else { mo + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    ((days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19)) * 1_000_000) + n(20..26)
}

#[test]
fn updated_at_parser_agrees_with_the_encoder() {
    for us in [0, 1_664_648_079_682_011, 951_825_600_999_999, 4_102_444_800_000_000] {
        assert_eq!(parse_updated_at(&fluxstat::wire::rfc3339_micros(us)), us);
    }
}

fn percent_with_one_decimal(v: &Value) -> f64 {
    let x = as_f64(v);
    assert!((0.0..=100.0).contains(&x), "{x}");
    assert!(((x * 10.0).round() - x * 10.0).abs() < 1e-9, "one decimal: {x}");
    x
}

#[test]
fn the_real_document_matches_this_machine() {
    let server = TestServer::sampling(settings());
    let before = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_micros() as i64;
    let r = server.connect().get("/metrics");
    assert_eq!(r.status, 200);
    let text = r.text();
    // As values only: keys and names may contain the letters ("influx", "/info").
    for bad in ["NaN", "Infinity", "inf"] {
        for before in [":", ":-", ",", "["] {
            assert!(!text.contains(&format!("{before}{bad}")), "{bad} in {text}");
        }
    }
    let doc = r.json();

    // Uptime: whole seconds, as /proc/uptime says.
    let uptime = as_u64(at(&doc, &["system", "uptime"]));
    let proc_uptime: f64 = proc_file("uptime").split_whitespace().next().and_then(|v| v.parse().ok()).expect("uptime");
    assert!((uptime as f64 - proc_uptime).abs() < 5.0, "{uptime} vs {proc_uptime}");

    // CPU: one key per logical CPU in /proc/stat, in numeric order, real figures.
    let cores = proc_file("stat").lines().filter(|l| l.starts_with("cpu") && !l.starts_with("cpu ")).count();
    assert_eq!(as_u64(at(&doc, &["system", "cpu", "cpu_core_total"])) as usize, cores);
    percent_with_one_decimal(at(&doc, &["system", "cpu", "cpu_usage_percentage"]));
    let per_core = at(&doc, &["system", "cpu", "cpu_core_usage_percentage"]);
    for i in 0..cores {
        percent_with_one_decimal(at(per_core, &[&format!("cpu_{i}")]));
    }
    let positions: Vec<usize> =
        (0..cores).map(|i| text.find(&format!("\"cpu_{i}\":")).expect("core key in the text")).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "core keys in numeric order");

    // Memory: /proc/meminfo's figures in bytes, used = total - available.
    let mem = at(&doc, &["system", "memory"]);
    let total = as_u64(at(mem, &["memory_total"]));
    assert_eq!(total, meminfo_bytes("MemTotal"));
    let used = as_u64(at(mem, &["memory_used"]));
    let free = as_u64(at(mem, &["memory_free"]));
    let available_now = meminfo_bytes("MemAvailable");
    let slack = 256 << 20; // the machine kept running between the sample and this read
    assert!(used.abs_diff(total - available_now) < slack, "used {used}");
    assert!(free <= total && free.abs_diff(meminfo_bytes("MemFree")) < slack, "free {free}");
    let pct = as_u64(at(mem, &["memory_used_percentage"]));
    assert_eq!(pct, ((used as f64 / total as f64) * 100.0).round() as u64);

    // Disks: count matches, df arithmetic holds, mount points sorted, / is listed.
    let disk = at(&doc, &["system", "disk"]);
    let n = as_u64(at(disk, &["disks_total"])) as usize;
    let Value::Object(disks) = at(disk, &["disks"]) else { panic!("disks is an object") };
    assert_eq!(disks.len(), n);
    let mut mounts = Vec::new();
    for i in 0..n {
        let d = at(disk, &["disks", &format!("disk_{i}")]);
        mounts.push(as_str(at(d, &["mount"])).to_owned());
        assert!(!as_str(at(d, &["name"])).is_empty() && !as_str(at(d, &["filesystem"])).is_empty());
        let u = at(d, &["usage"]);
        let (t, f, us) = (as_u64(at(u, &["total"])), as_u64(at(u, &["free"])), as_u64(at(u, &["used"])));
        assert!(t > 0 && f <= t && us <= t, "{t} {f} {us}");
        let want = if us + f == 0 { 0 } else { ((us as f64 / (us + f) as f64) * 100.0).round() as u64 };
        assert_eq!(as_u64(at(u, &["used_percentage"])), want);
    }
    let mut sorted = mounts.clone();
    sorted.sort();
    assert_eq!(mounts, sorted);
    assert!(mounts.iter().any(|m| m == "/"), "{mounts:?}");
    assert!(!mounts.iter().any(|m| m.starts_with("/proc") || m.starts_with("/sys")), "{mounts:?}");

    // updated_at: when the sample was taken (before the request, within the interval).
    let taken = parse_updated_at(as_str(at(&doc, &["updated_at"])));
    let age = before - taken;
    assert!((-1_000_000..Duration::from_secs(3).as_micros() as i64).contains(&age), "age {age} µs");
}

#[test]
fn the_new_sections_match_this_machine() {
    let server = TestServer::sampling(settings());
    let r = server.connect().get("/metrics");
    let doc = r.json();

    // Load: /proc/loadavg, two decimals, moving slowly.
    let loadavg = proc_file("loadavg");
    let now: Vec<f64> = loadavg.split_whitespace().take(3).map(|v| v.parse().expect("load")).collect();
    for (key, want) in ["load_1", "load_5", "load_15"].iter().zip(&now) {
        let got = as_f64(at(&doc, &["system", "load", key]));
        assert!((got - want).abs() < 1.0, "{key}: {got} vs {want}");
        assert!(((got * 100.0).round() - got * 100.0).abs() < 1e-9, "two decimals: {got}");
    }

    // Memory available and swap: /proc/meminfo.
    let slack = 256 << 20;
    let available = as_u64(at(&doc, &["system", "memory", "memory_available"]));
    assert!(available.abs_diff(meminfo_bytes("MemAvailable")) < slack);
    let swap = at(&doc, &["system", "swap"]);
    assert_eq!(as_u64(at(swap, &["swap_total"])), meminfo_bytes("SwapTotal"));
    let (used, free) = (as_u64(at(swap, &["swap_used"])), as_u64(at(swap, &["swap_free"])));
    assert_eq!(used + free, meminfo_bytes("SwapTotal"));

    // Network: every interface of /proc/net/dev but loopback and container plumbing,
    // with counters that never exceed what the kernel says now.
    let dev = proc_file("net/dev");
    let Value::Object(ifs) = at(&doc, &["system", "network"]) else { panic!("network is an object") };
    let mut want: Vec<String> = dev
        .lines()
        .filter_map(|l| l.split_once(':').map(|(n, _)| n.trim().to_owned()))
        .filter(|n| n != "lo" && !n.starts_with("veth") && !n.starts_with("docker"))
        .collect();
    want.sort();
    let got: Vec<String> = ifs.keys().cloned().collect();
    assert_eq!(got, want);
    for name in &got {
        let line = dev.lines().find(|l| l.split_once(':').is_some_and(|(n, _)| n.trim() == name)).expect("line");
        let kernel_rx: u64 =
            line.split_once(':').and_then(|(_, v)| v.split_whitespace().next()?.parse().ok()).expect("rx");
        assert!(as_u64(at(&doc, &["system", "network", name, "rx_bytes"])) <= kernel_rx);
    }

    // Host: the kernel's own files, and an architecture this test binary runs as
    // (`uname -m` would name the host's under an emulator such as qemu-user).
    let host = at(&doc, &["system", "host"]);
    let arch = as_str(at(host, &["arch"]));
    let family = match std::env::consts::ARCH {
        "x86" => "i",
        "arm" => "arm",
        other => other,
    };
    assert!(arch.starts_with(family), "{arch} on {}", std::env::consts::ARCH);
    assert_eq!(as_str(at(host, &["kernel"])), proc_file("sys/kernel/osrelease").trim());
    assert_eq!(as_str(at(host, &["hostname"])), proc_file("sys/kernel/hostname").trim());

    // Processes: about as many as /proc lists now.
    let procs = std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().chars().all(|c| c.is_ascii_digit()))
        .count() as u64;
    let counted = as_u64(at(&doc, &["system", "processes", "processes_total"]));
    assert!(counted > 0 && counted.abs_diff(procs) < 200, "{counted} vs {procs}");

    // Temperatures: an object of finite numbers (this machine may have none).
    let Value::Object(temps) = at(&doc, &["system", "temperature"]) else { panic!("temperature is an object") };
    for (name, v) in temps.iter() {
        assert!(as_f64(v).is_finite() && !name.is_empty());
    }

    // fluxstat's own figures.
    let own = at(&doc, &["fluxstat"]);
    assert_eq!(as_str(at(own, &["version"])), env!("CARGO_PKG_VERSION"));
    assert_eq!(as_u64(at(own, &["interval_ms"])), 1000);
    assert!(as_u64(at(own, &["rss_bytes"])) > 0);
    assert!(as_u64(at(own, &["sample_duration_us"])) < 1_000_000);
    at(own, &["cpu_time_ms"]);
}
