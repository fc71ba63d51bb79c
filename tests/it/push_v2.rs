//! InfluxDB's 2.x/3.x write API (`/api/v2/write?org=…&bucket=…` with
//! `Authorization: Token …`) against a real server that speaks it. Debian packages
//! neither InfluxDB 2 nor 3; it packages VictoriaMetrics (`victoria-metrics`), which
//! takes the same requests at the same path and stores each field as the series
//! `<measurement>_<field>` with the tags as labels, at millisecond resolution. Its
//! line-protocol parser is not InfluxDB's, so the hostile mount point's round trip
//! checks fluxstat's escaping against a second reader.
//!
//! Started on 127.0.0.1 with a throw-away data directory and killed by its PID, as
//! in `push`; a missing server skips the test (fails it with `CI` set).

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use miniserde::json::{self, Value};

use crate::cli::{fluxstat, Running};
use crate::push::{counter, free_port, procfs_with_mounts, urlencode};
use crate::servers::{http, metrics, skip_emulated, tool, wait_until, Daemon, TempDir};
use crate::support::{as_f64, as_str, at, PATIENCE};

struct Victoria {
    _daemon: Daemon,
    addr: SocketAddr,
}

impl Victoria {
    fn start(dir: &std::path::Path) -> Option<Victoria> {
        let bin = tool("victoria-metrics")?;
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let daemon = Daemon::start(
            Command::new(bin)
                .arg(format!("-httpListenAddr={addr}"))
                .arg(format!("-storageDataPath={}", dir.join("vm").display()))
                .arg("-loggerLevel=ERROR"),
        );
        wait_until("victoria-metrics to answer /health", Duration::from_secs(30), || {
            http(addr, "GET", "/health", "").is_some_and(|(s, _, _)| s == 200)
        });
        Some(Victoria { _daemon: daemon, addr })
    }

    /// Every series matching `selector`: its labels and its `(ms, value)` points.
    fn export(&self, selector: &str) -> Vec<(Value, Vec<(i64, f64)>)> {
        // Points become searchable once the in-memory buffers are flushed.
        let _ = http(self.addr, "GET", "/internal/force_flush", "");
        let path = format!("/api/v1/export?match[]={}", urlencode(selector));
        let (status, _, body) = http(self.addr, "GET", &path, "").expect("export");
        assert_eq!(status, 200, "{selector}: {body}");
        body.lines()
            .map(|line| {
                let v: Value = json::from_str(line).expect("export line");
                let times = match at(&v, &["timestamps"]) {
                    Value::Array(a) => a.iter().map(|t| as_f64(t) as i64).collect::<Vec<_>>(),
                    _ => panic!("no timestamps: {line}"),
                };
                let values = match at(&v, &["values"]) {
                    Value::Array(a) => a.iter().map(as_f64).collect::<Vec<_>>(),
                    _ => panic!("no values: {line}"),
                };
                (at(&v, &["metric"]).clone(), times.into_iter().zip(values).collect())
            })
            .collect()
    }

    /// The value of the one series matching `selector` at `ms`, once it is there.
    fn value_at(&self, selector: &str, ms: i64) -> f64 {
        let mut found = None;
        wait_until(&format!("{selector} at {ms} ms"), PATIENCE, || {
            found = self.export(selector).iter().flat_map(|(_, points)| points).find(|(t, _)| *t == ms).map(|p| p.1);
            found.is_some()
        });
        found.unwrap_or(f64::NAN)
    }
}

#[test]
fn influx_v2_api_points_reach_a_real_v2_endpoint_and_hostile_names_round_trip() {
    if skip_emulated() {
        return;
    }
    let dir = TempDir::new("v2");
    let Some(vm) = Victoria::start(&dir.0) else { return };
    let hostile = dir.0.join("mnt/we ird,mount=x y\\z");
    std::fs::create_dir_all(&hostile).expect("hostile dir");
    let proc = procfs_with_mounts(&dir.0, &[&hostile]);
    let token = dir.0.join("token");
    std::fs::write(&token, "s3cret-t0ken\n").expect("token");
    let url = format!("http://{}/api/v2/write?org=home&bucket=fluxstat", vm.addr);
    let mut fx = Running::start(
        fluxstat()
            .args(["--listen", "127.0.0.1:0", "--interval", "200ms", "--disk-exclude-mount", ""])
            .args(["--influx-url", &url])
            .arg("--influx-token-file")
            .arg(&token)
            .arg("--procfs")
            .arg(&proc),
    );
    let addr = fx.listening_addr();

    wait_until("three samples sent", PATIENCE, || counter(&metrics(addr).0, "influx", "sent") >= 3);
    let (doc, us) = metrics(addr);
    let ms = us / 1000;
    for key in ["memory_total", "memory_used", "memory_available"] {
        let want = as_f64(at(&doc, &["system", "memory", key]));
        assert_eq!(vm.value_at(&format!("memory_{key}"), ms), want, "memory.{key}");
    }
    let want = as_f64(at(&doc, &["fluxstat", "rss_bytes"]));
    assert_eq!(vm.value_at("fluxstat_rss_bytes", ms), want, "fluxstat.rss_bytes: this very sample");

    // The hostile mount point comes back intact as a label, with its figures.
    let name = hostile.to_string_lossy().into_owned();
    let used = vm.export("disk_used");
    let labels: Vec<String> = used.iter().map(|(m, _)| as_str(at(m, &["mount"])).to_owned()).collect();
    assert!(labels.contains(&name), "{name:?} not among the mount labels {labels:?}");
    let entry = match at(&doc, &["system", "disk", "disks"]) {
        Value::Object(o) => o.values().find(|d| as_str(at(d, &["mount"])) == name).cloned().expect("hostile mount"),
        _ => panic!("disks"),
    };
    let quoted = name.replace('\\', "\\\\").replace('"', "\\\"");
    let selector = format!("disk_used{{mount=\"{quoted}\"}}");
    assert_eq!(vm.value_at(&selector, ms), as_f64(at(&entry, &["usage", "used"])), "disk.used of {name}");

    let after = metrics(addr).0;
    assert_eq!(counter(&after, "influx", "failed"), 0, "{after:?}");
    assert_eq!(counter(&after, "influx", "dropped"), 0, "{after:?}");
}
