//! Looking at a running fluxstat from outside, as an operator would: its open
//! descriptors, resident memory and CPU time from /proc, and the descriptor limit
//! of the test process itself. Used by the robustness and soak tests.

use std::process::Command;

fn status_field(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    let line = status.lines().find(|l| l.starts_with(key)).unwrap_or_else(|| panic!("{key} in /proc/{pid}/status"));
    line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("a number")
}

/// Resident memory in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    status_field(pid, "VmRSS:")
}

/// Open file descriptors.
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).expect("/proc/PID/fd").count()
}

/// The descriptors a process holds for good: the fewest seen over 100 ms, since
/// the sampler opens /proc files for a moment every interval.
pub fn steady_fd_count(pid: u32) -> usize {
    (0..20)
        .map(|_| {
            std::thread::sleep(std::time::Duration::from_millis(5));
            fd_count(pid)
        })
        .min()
        .unwrap_or(usize::MAX)
}

/// User plus system CPU time, in clock ticks.
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    // The command name may hold spaces: fields are counted after its ')'.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).expect("stat format");
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 (utime) and 15 (stime) of proc(5); `after` starts at field 3.
    let num = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).expect("utime/stime");
    num(11) + num(12)
}

/// Clock ticks per second (`getconf CLK_TCK`).
pub fn clock_ticks_per_second() -> u64 {
    let out = Command::new("getconf").arg("CLK_TCK").output().expect("getconf runs");
    String::from_utf8_lossy(&out.stdout).trim().parse().expect("CLK_TCK is a number")
}

fn nofile_limits() -> (u64, u64) {
    let limits = std::fs::read_to_string("/proc/self/limits").expect("/proc/self/limits");
    let line = limits.lines().find(|l| l.starts_with("Max open files")).expect("Max open files");
    let mut nums =
        line.split_whitespace().filter_map(|w| w.parse::<u64>().ok().or((w == "unlimited").then_some(u64::MAX)));
    (nums.next().expect("soft limit"), nums.next().expect("hard limit"))
}

/// Raises this process's soft RLIMIT_NOFILE to at least `n` (with prlimit(1),
/// since std has no setrlimit). Children started afterwards inherit it.
pub fn ensure_nofile(n: u64) {
    let (soft, hard) = nofile_limits();
    if soft >= n {
        return;
    }
    assert!(hard >= n, "this test needs {n} open files but the hard limit is {hard}: raise it (ulimit -Hn)");
    let status = Command::new("prlimit")
        .arg(format!("--pid={}", std::process::id()))
        .arg(format!("--nofile={n}:{hard}"))
        .status()
        .expect("prlimit runs (util-linux)");
    assert!(status.success(), "prlimit failed");
    assert!(nofile_limits().0 >= n, "soft limit still below {n}");
}
