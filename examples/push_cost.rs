//! The CPU cost of pushing one sample: takes a real sample of this machine, then
//! times what each pusher does with it on its thread: InfluxDB's line
//! protocol (`push::line`) with the POST head, and MQTT's state payloads with
//! their PUBLISH packets (`push::ha`, `push::mqtt`). The discovery configs, built
//! only when an entity appears or on a reconnect, are timed apart. The sockets'
//! write calls (one per sample per pusher) are not included.
//!
//! `cargo run --release --features push --example push_cost [ITERATIONS]`

use std::hint::black_box;
use std::time::{Duration, Instant};

use fluxstat::push::{ha, line, mqtt};
use fluxstat::sample::{Sampler, SamplerConfig};

fn time(name: &str, n: u32, mut f: impl FnMut() -> usize) {
    let started = Instant::now();
    let mut bytes = 0;
    for _ in 0..n {
        bytes = f();
    }
    let per = started.elapsed() / n;
    println!("{name:<28} {:>8.1} µs  {bytes:>6} bytes", per.as_secs_f64() * 1e6);
}

fn main() {
    let n: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(2000);
    let mut sampler = match Sampler::new(SamplerConfig::new(Duration::from_secs(1))) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot sample: {e}");
            std::process::exit(1);
        }
    };
    std::thread::sleep(Duration::from_millis(250));
    let s = sampler.sample();
    println!(
        "one sample of this machine: {} disks, {} interfaces, {} sensors; mean of {n}",
        s.disks.as_ref().map_or(0, Vec::len),
        s.network.as_ref().map_or(0, Vec::len),
        s.temperatures.as_ref().map_or(0, Vec::len)
    );
    time("influx: line protocol", n, || {
        let mut out = String::new();
        line::encode(black_box(&s), &mut out);
        black_box(out).len()
    });
    time("mqtt: states + PUBLISH", n, || {
        let node = ha::node(&s);
        let mut out = Vec::new();
        for (topic, json) in ha::states(black_box(&s)) {
            out.extend(mqtt::publish(&format!("fluxstat/{node}/{topic}"), json.as_bytes(), false));
        }
        black_box(out).len()
    });
    time("mqtt: entity list (compare)", n, || black_box(ha::entities(black_box(&s))).len());
    time("mqtt: discovery configs", n / 10 + 1, || {
        let mut out = Vec::new();
        for e in ha::entities(&s) {
            let (topic, json) = ha::config(&s, &e, "homeassistant", 30);
            out.extend(mqtt::publish(&topic, json.as_bytes(), true));
        }
        black_box(out).len()
    });
}
