//! Where a sample's time goes: runs each reader of the sampler many times on this
//! machine and prints the mean wall time of each, and of a whole sample.
//!
//! `cargo run --release --example sample_cost [ITERATIONS]`

#![cfg_attr(windows, allow(dead_code, unused_imports))]

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

#[cfg(not(windows))]
use fluxstat::sample::{
    disk::{DiskFilter, DiskReader},
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

#[cfg(not(windows))]
fn main() {
    let n: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(500);
    let (proc, sys, root) = (Path::new("/proc"), Path::new("/sys"), Path::new("/"));
    let mut disks = DiskReader::new(Duration::from_secs(1));
    let filter = DiskFilter::default();
    let mut rates = Rates::default();
    let net = NetFilter::default();
    let mut cpu = sysinfo::System::new().expect("sysinfo");
    println!("mean of {n} runs each");
    time("cpu (sysinfo)", n, || cpu.refresh_cpu_usage());
    time("memory + swap", n, || {
        black_box(memory::read(proc));
    });
    time("load", n, || {
        black_box(load::read_load(proc));
    });
    time("uptime", n, || {
        black_box(load::read_uptime(proc));
    });
    time("disks", n, || {
        black_box(disks.read(proc, &filter));
    });
    time("network", n, || {
        black_box(fluxstat::sample::network::read(proc, &net, &mut rates, Instant::now()));
    });
    time("temperatures", n, || {
        black_box(temperature::read(sys));
    });
    time("host (every 60 s)", n, || {
        black_box(host::read(proc, sys, root));
    });
    time("processes", n, || {
        black_box(host::count_processes(proc));
    });
    time("own rss + cpu", n, || {
        black_box((own::rss_bytes(), own::cpu_time_ms()));
    });
    let mut sampler = Sampler::new(SamplerConfig::new(Duration::from_secs(1))).expect("sampler");
    time("whole sample", n, || {
        black_box(sampler.sample());
    });
    let snapshot = sampler.sample();
    time("wire::encode", n, || {
        black_box(fluxstat::wire::encode(&snapshot));
    });
    time("read /proc/stat", n, || {
        let _ = black_box(std::fs::read(proc.join("stat")));
    });
    time("sample + serialise", n, || {
        black_box(sampler.publish());
    });
}
