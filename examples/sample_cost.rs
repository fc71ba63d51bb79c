//! Where a sample's time goes: runs each reader of the sampler many times on this
//! machine and prints the mean wall time of each, and of a whole sample.
//!
//! sysinfo refreshes CPU usage at most every `MINIMUM_CPU_UPDATE_INTERVAL`
//! (200 ms) and does nothing when called sooner, so the CPU reader and the whole
//! sample are timed 20 times that far apart, the wait not counted. `disks` is a
//! sample as the sampler takes it (the mount table read only when procfs flags a
//! change, statvfs on the worker thread); `mount table` is the read, parse and
//! selection it skips when nothing was mounted.
//!
//! `cargo run --release --example sample_cost [ITERATIONS]`

#![cfg_attr(windows, allow(dead_code, unused_imports))]

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

#[cfg(not(windows))]
use fluxstat::sample::{
    disk::{self, DiskFilter, DiskReader},
    files::{KeptFile, SMALL, TABLE},
    host, load, memory,
    network::{NetFilter, Rates},
    own, temperature, Sampler, SamplerConfig,
};

/// The readers measured here are the Linux ones.
#[cfg(windows)]
fn main() {
    eprintln!("sample_cost measures the Linux readers of /proc and /sys; there is nothing to measure on Windows");
}

fn time(name: &str, n: u32, mut f: impl FnMut()) {
    let started = Instant::now();
    for _ in 0..n {
        f();
    }
    let per = started.elapsed() / n;
    println!("{name:<22} {:>8.1} µs", per.as_secs_f64() * 1e6);
}

/// Like `time`, with `gap` of idle between calls, not counted.
fn time_spaced(name: &str, n: u32, gap: Duration, mut f: impl FnMut()) {
    let mut spent = Duration::ZERO;
    for _ in 0..n {
        std::thread::sleep(gap);
        let started = Instant::now();
        f();
        spent += started.elapsed();
    }
    let per = spent / n;
    println!("{name:<22} {:>8.1} µs  (mean of {n}, {} ms apart)", per.as_secs_f64() * 1e6, gap.as_millis());
}

#[cfg(not(windows))]
fn main() {
    let n: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(500);
    // FLUXSTAT_COST_TREE=tests/fixtures/rpi5 times the sysfs readers (and the
    // lease files, the reboot flag) on a fixture tree: this VM has no fan,
    // cpufreq, rpi_volt or eMMC, so their code paths cost nothing here otherwise.
    let tree = std::env::var_os("FLUXSTAT_COST_TREE").map(std::path::PathBuf::from);
    let tree_sys = tree.as_ref().map(|t| t.join("sys"));
    let (proc, root) = (Path::new("/proc"), tree.as_deref().unwrap_or(Path::new("/")));
    let sys = tree_sys.as_deref().unwrap_or(Path::new("/sys"));
    let mut disks = DiskReader::new(Duration::from_secs(1));
    let filter = DiskFilter::default();
    let mut rates = Rates::default();
    let net = NetFilter::default();
    let mut cpu = sysinfo::System::new().expect("sysinfo");
    println!("mean of {n} runs each");
    let gap = sysinfo::MINIMUM_CPU_UPDATE_INTERVAL + Duration::from_millis(10);
    time_spaced("cpu (sysinfo)", 20, gap, || {
        cpu.refresh_cpu_usage();
        black_box(fluxstat::sample::cpu::read(&cpu));
    });
    let mut meminfo = KeptFile::new(proc.join("meminfo"), TABLE);
    time("memory + swap", n, || {
        black_box(meminfo.read().map(memory::parse).ok());
    });
    let mut loadavg = KeptFile::new(proc.join("loadavg"), SMALL);
    time("load", n, || {
        black_box(loadavg.read().map(load::parse_load).ok());
    });
    let mut uptime = KeptFile::new(proc.join("uptime"), SMALL);
    time("uptime", n, || {
        black_box(uptime.read().map(load::parse_uptime).ok());
    });
    time("disks", n, || {
        black_box(disks.read(proc, &filter));
    });
    time("mount table", n, || {
        let table = std::fs::read(proc.join("self/mountinfo")).unwrap_or_default();
        black_box(disk::select(disk::parse_mountinfo(&table), &filter));
    });
    time("network", n, || {
        black_box(fluxstat::sample::network::read(proc, &net, &mut rates, Instant::now()));
    });
    time("temperatures", n, || {
        black_box(temperature::read(sys));
    });
    let chips = fluxstat::sample::drivers::hwmon_chips(sys);
    time("hwmon chips (every 60 s)", n, || {
        black_box(fluxstat::sample::drivers::hwmon_chips(sys));
    });
    time("fans (list, every 60 s)", n, || {
        black_box(fluxstat::sample::fans::list(&chips));
    });
    let fan_inputs = fluxstat::sample::fans::list(&chips);
    time("fans", n, || {
        black_box(fluxstat::sample::fans::read(&fan_inputs));
    });
    time("power", n, || {
        black_box(fluxstat::sample::power::read(sys, &chips));
    });
    let mut cpufreq = fluxstat::sample::cpufreq::CpuFreq::default();
    time("cpu frequency", n, || {
        black_box(cpufreq.read(sys));
    });
    let mut wifi = fluxstat::sample::wifi::Wifi::new(fluxstat::sample::wifi::Kernel::default());
    time("wifi (every 5 s)", n.min(50), || {
        black_box(wifi.read_now());
    });
    let drivers = fluxstat::sample::drivers::Job::new(sys.to_path_buf());
    time("driver job (all above)", n, || {
        black_box(drivers.run());
    });
    let mut diskio = fluxstat::sample::diskio::DiskIo::default();
    let io_exclude = fluxstat::glob::GlobList::parse(fluxstat::sample::diskio::DEFAULT_EXCLUDE);
    time("disk io", n, || {
        black_box(diskio.read(proc, sys, &io_exclude, Instant::now()));
    });
    let mut conntrack = fluxstat::sample::conntrack::ConntrackFiles::new(proc);
    time("conntrack", n, || {
        black_box(conntrack.read());
    });
    let leases = fluxstat::sample::dhcp::paths(&[], root);
    time("dhcp leases (every 10 s)", n, || {
        black_box(fluxstat::sample::dhcp::read(&leases, 1_764_480_000));
    });
    time("flash (every 60 s)", n, || {
        black_box(fluxstat::sample::flash::read(sys));
    });
    time("reboot (every 60 s)", n, || {
        black_box(fluxstat::sample::reboot::read(root));
    });
    time("host (every 60 s)", n, || {
        black_box(host::read(proc, sys, root));
    });
    let mut processes = host::ProcessCounter::new(proc);
    time("processes (every 5 s)", n, || {
        black_box(processes.count().ok());
    });
    let mut own_files = own::OwnFiles::default();
    time("own rss + cpu", n, || {
        black_box((own_files.rss_bytes(), own_files.cpu_time_ms()));
    });
    let mut sampler = Sampler::new(SamplerConfig::new(Duration::from_secs(1))).expect("sampler");
    time_spaced("whole sample", 20, gap, || {
        black_box(sampler.sample());
    });
    let snapshot = sampler.sample();
    time("wire::encode", n, || {
        black_box(fluxstat::wire::encode(&snapshot));
    });
    time("sample + serialise", n, || {
        black_box(sampler.publish());
    });
}
