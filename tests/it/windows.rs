//! The Windows document, checked against what the machine under it says: drive `C:`
//! (seed keys, NTFS, df-like usage), CPU, memory and uptime. Under wine (how CI
//! runs these, see cross/test-under-wine.sh) the host's `/proc` is linked at
//! `C:\hostproc` (cross/lib.sh, wine_prefix_start), and the script passes the statvfs of
//! the prefix's `drive_c` in FLUXSTAT_WINE_DRIVE_C (`blocks bavail block_size`).
//! On a real Windows only the checks that need no Linux view run. Also: Ctrl-C
//! (and, on a real Windows, Ctrl-Break) sent through the console of the fluxstat
//! under test, by a helper process (`console_event_helper`), as Windows sends them.

use std::time::Duration;

use fluxstat::sample::{Sampler, SamplerConfig};

use crate::support::{as_str, as_u64, at, heavy, settings, TestServer};

/// The host's `/proc/<name>` under wine; `None` on a real Windows.
fn host_proc(name: &str) -> Option<String> {
    std::env::var_os("FLUXSTAT_UNDER_WINE")?;
    Some(std::fs::read_to_string(format!("C:\\hostproc\\{name}")).expect("the host's /proc at C:\\hostproc"))
}

/// The busy share of each `cpuN` line between two /proc/stat texts, and of all.
fn proc_stat_usage(before: &str, after: &str) -> (f64, Vec<f64>) {
    fn times(text: &str) -> Vec<(String, u64, u64)> {
        text.lines()
            .filter(|l| l.starts_with("cpu"))
            .map(|l| {
                let mut f = l.split_whitespace();
                let name = f.next().expect("name").to_owned();
                let v: Vec<u64> = f.map(|x| x.parse().expect("number")).collect();
                let idle = v[3] + v.get(4).copied().unwrap_or(0);
                (name, idle, v.iter().take(8).sum())
            })
            .collect()
    }
    let (b, a) = (times(before), times(after));
    let pct: Vec<f64> = b
        .iter()
        .zip(&a)
        .map(|((_, bi, bt), (_, ai, at))| {
            let dt = at.saturating_sub(*bt) as f64;
            if dt == 0.0 {
                0.0
            } else {
                (dt - ai.saturating_sub(*bi) as f64) / dt * 100.0
            }
        })
        .collect();
    (pct[0], pct[1..].to_vec())
}

#[test]
fn the_document_has_the_seeds_windows_shape_and_drive_c_figures() {
    let _heavy = heavy();
    let server = TestServer::sampling(settings());
    let doc = server.connect().get("/metrics").json();
    let disks = at(&doc, &["system", "disk", "disks"]);
    let c = at(disks, &["disk_0"]);
    assert_eq!(as_str(at(c, &["name"])), "C:\\");
    assert_eq!(as_str(at(c, &["mount"])), "C:\\");
    assert_eq!(as_str(at(c, &["filesystem"])), "NTFS");
    let total = as_u64(at(c, &["usage", "total"]));
    let free = as_u64(at(c, &["usage", "free"]));
    let used = as_u64(at(c, &["usage", "used"]));
    assert!(total > 0 && free <= total && used <= total, "{total} {free} {used}");
    let pct = as_u64(at(c, &["usage", "used_percentage"]));
    assert_eq!(pct, (used as f64 / (used + free) as f64 * 100.0).round() as u64);
    assert!(matches!(at(&doc, &["system", "load"]), miniserde::json::Value::Null), "no load averages on Windows");

    // What Windows (or wine) says of C: right now. The sample is up to an interval
    // old and the disk is shared with whatever else runs: 1 GiB of slack on free.
    let (mut avail_now, mut total_now, mut free_now) = (0u64, 0u64, 0u64);
    let root: Vec<u16> = "C:\\".encode_utf16().chain([0]).collect();
    // SAFETY: a NUL-terminated path and three valid out pointers.
    let ok = unsafe {
        windows_sys::Win32::Storage::FileSystem::GetDiskFreeSpaceExW(
            root.as_ptr(),
            &mut avail_now,
            &mut total_now,
            &mut free_now,
        )
    };
    assert_ne!(ok, 0, "GetDiskFreeSpaceExW(C:)");
    assert_eq!(total, total_now, "C: total");
    assert!(free.abs_diff(avail_now) < 1 << 30, "C: free {free} vs {avail_now} now");
    assert!(used.abs_diff(total_now - free_now) < 1 << 30, "C: used {used} vs {} now", total_now - free_now);

    // Under wine, C: is the filesystem the prefix is on: its size is the statvfs
    // figure the script measured (blocks × block size; free moves too fast to compare).
    if let Ok(statvfs) = std::env::var("FLUXSTAT_WINE_DRIVE_C") {
        let v: Vec<u64> = statvfs.split_whitespace().map(|x| x.parse().expect("number")).collect();
        assert_eq!(total, v[0] * v[2], "C: total is the statvfs of drive_c");
    }

    if let Some(meminfo) = host_proc("meminfo") {
        let kib = |key: &str| -> u64 {
            let line = meminfo.lines().find(|l| l.starts_with(key)).expect("meminfo key");
            line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("kB")
        };
        let total = as_u64(at(&doc, &["system", "memory", "memory_total"]));
        assert!(total.abs_diff(kib("MemTotal:") * 1024) < 1 << 20, "memory_total {total}");
        let uptime = as_u64(at(&doc, &["system", "uptime"]));
        let host: f64 = host_proc("uptime").and_then(|u| u.split_whitespace().next()?.parse().ok()).expect("uptime");
        assert!((uptime as f64 - host).abs() < 5.0, "uptime {uptime} vs {host}");
    }
}

#[test]
fn cpu_figures_match_the_hosts_proc_stat_over_the_same_window() {
    let Some(_) = host_proc("stat") else { return };
    let _heavy = heavy();
    let mut sampler = Sampler::new(SamplerConfig::new(Duration::from_secs(1))).expect("sampler");
    let before = host_proc("stat").expect("stat");
    std::thread::sleep(Duration::from_millis(1000));
    let after = host_proc("stat").expect("stat");
    let cpu = sampler.sample().cpu.expect("CPU figures");
    let (total, cores) = proc_stat_usage(&before, &after);
    assert_eq!(cpu.per_core_percent.len(), cores.len(), "one figure per cpuN line");
    // The windows differ by the few ms between the calls; a busy shared machine
    // moves that much in 10 points at most.
    assert!((cpu.total_percent - total).abs() < 10.0, "total {} vs /proc/stat {total:.1}", cpu.total_percent);
    for (i, (got, want)) in cpu.per_core_percent.iter().zip(&cores).enumerate() {
        assert!((got - want).abs() < 15.0, "cpu{i} {got} vs /proc/stat {want:.1}");
    }
}

#[test]
fn procfs_and_sysfs_are_refused_on_windows_and_not_needed() {
    use fluxstat::config::{self, Action};
    let parse = |args: &[&str], env: &[(&str, &str)]| {
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        config::parse(args.iter().map(std::ffi::OsString::from), move |k| {
            env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })
    };
    // No C:\proc on Windows, and the defaults still start.
    assert!(matches!(parse(&[], &[]), Ok(Action::Run(_))));
    let e = parse(&["--procfs", "C:\\"], &[]).expect_err("refused").to_string();
    assert_eq!(e, "--procfs: there is no procfs on Windows");
    let e = parse(&[], &[("FLUXSTAT_SYSFS", "C:\\")]).expect_err("refused").to_string();
    assert_eq!(e, "FLUXSTAT_SYSFS: there is no sysfs on Windows");
    // --help says so, with the platform's default excludes and no Linux path.
    let help = config::help();
    assert!(help.contains("Linux only: refused on this system, which has no procfs."), "{help}");
    assert!(!help.contains("/proc]") && !help.contains("/sys]"), "{help}");
    assert!(help.contains("[default: isatap*,Teredo*,6to4*,"), "{help}");
    // The binary: exit 2, one line on stderr.
    let out = crate::cli::fluxstat().args(["--sysfs", "C:\\"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&out.stderr).trim(), "fluxstat: --sysfs: there is no sysfs on Windows");
}

/// Sends a console event to the fluxstat whose pid is in `FLUXSTAT_CONSOLE_EVENT`
/// (`EVENT PID`), from a process of its own: this test binary, run again by
/// `cli::Running::console_event` for just this test. It leaves its own console
/// (if any), attaches to fluxstat's (each fluxstat the tests start has a console
/// of its own, `cli::fluxstat`), ignores the event itself and raises it for every
/// process of that console. Doing this in the test process would move all the
/// tests' threads onto another console.
#[test]
#[ignore = "a helper: run by cli::Running::console_event"]
fn console_event_helper() {
    use windows_sys::Win32::System::Console::{
        AttachConsole, FreeConsole, GenerateConsoleCtrlEvent, SetConsoleCtrlHandler,
    };
    let Ok(spec) = std::env::var("FLUXSTAT_CONSOLE_EVENT") else { return };
    let mut words = spec.split_whitespace().map(|w| w.parse::<u32>().expect("EVENT PID"));
    let (event, pid) = (words.next().expect("EVENT"), words.next().expect("PID"));
    // SAFETY: plain Win32 calls without pointers.
    unsafe {
        FreeConsole();
        assert_ne!(AttachConsole(pid), 0, "AttachConsole({pid}): {}", std::io::Error::last_os_error());
        assert_ne!(SetConsoleCtrlHandler(None, 1), 0, "ignore the event here");
        let sent = GenerateConsoleCtrlEvent(event, 0);
        assert_ne!(sent, 0, "GenerateConsoleCtrlEvent({event}): {}", std::io::Error::last_os_error());
    }
}

/// Starts fluxstat in a console of its own, sends it `event` through that console
/// as Windows does, and checks that it stops cleanly within 2 s saying why.
fn console_event_stops_the_server(event: u32, name: &str) {
    let mut server = crate::cli::Running::start(crate::cli::fluxstat().args(["--listen", "127.0.0.1:0"]));
    let addr = server.listening_addr();
    assert_eq!(crate::support::Client::connect(addr).get("/metrics").status, 200);
    server.console_event(event);
    let (code, took) = server.wait_exit();
    assert_eq!(code, 0, "{name}");
    assert!(took < Duration::from_secs(2), "{name}: took {took:?}");
    let lines = server.all_lines();
    assert!(lines.iter().any(|l| l.contains(&format!("received {name}, shutting down"))), "{lines:?}");
    assert!(lines.iter().any(|l| l.ends_with("stopped")), "{lines:?}");
}

#[test]
fn ctrl_c_stops_the_server_cleanly_within_2s() {
    console_event_stops_the_server(windows_sys::Win32::System::Console::CTRL_C_EVENT, "Ctrl-C");
}

#[test]
fn ctrl_break_stops_the_server_cleanly_within_2s() {
    console_event_stops_the_server(windows_sys::Win32::System::Console::CTRL_BREAK_EVENT, "Ctrl-Break");
}
