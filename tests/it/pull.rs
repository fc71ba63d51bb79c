//! The pull recipes against real consumers (issue 13), with every build (no
//! push feature needed): collectd's curl_json plugin running the shipped block
//! (`packaging/collectd/fluxstat.conf`), and Jinja2 rendering the README's Home
//! Assistant REST templates. A missing tool skips the test with a printed reason,
//! except when `CI` is set, where it fails (`.ci/run` installs them); under an
//! emulator they are skipped, the native run covers them.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use miniserde::json::{self, Value};

use crate::cli::{fluxstat, Running};
use crate::servers::{http, metrics, skip_emulated, tool, wait_until, Daemon, TempDir};
use crate::support::{as_f64, as_str, at};

/// fluxstat on the x86 fixture (constant memory, load and uptime figures).
fn fixture_fluxstat() -> (Running, SocketAddr) {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/x86");
    let mut fx = Running::start(
        fluxstat()
            .args(["--listen", "127.0.0.1:0", "--interval", "1s"])
            .arg("--procfs")
            .arg(fixtures.join("proc"))
            .arg("--sysfs")
            .arg(fixtures.join("sys")),
    );
    let addr = fx.listening_addr();
    (fx, addr)
}

/// collectd runs the shipped curl_json block against fluxstat and writes CSV;
/// the values it wrote are the document's.
#[test]
fn collectd_curl_json_recipe_writes_the_documents_values() {
    if skip_emulated() {
        return;
    }
    let Some(collectd) = tool("collectd") else { return };
    let dir = TempDir::new("collectd");
    let (_fx, addr) = fixture_fluxstat();
    let recipe =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/collectd/fluxstat.conf"))
            .expect("recipe");
    let recipe = recipe.replace("http://192.168.1.1:8001/metrics", &format!("http://{addr}/metrics"));
    assert!(recipe.contains(&addr.to_string()), "the recipe's URL is the documented one");
    let d = dir.0.display();
    let config = format!(
        "Hostname \"fluxtest\"\nFQDNLookup false\nInterval 1\nBaseDir \"{d}\"\nPIDFile \"{d}/collectd.pid\"\n\
         TypesDB \"/usr/share/collectd/types.db\"\nLoadPlugin csv\n<Plugin csv>\n  DataDir \"{d}/csv\"\n  StoreRates false\n</Plugin>\n{recipe}"
    );
    let conf = dir.0.join("collectd.conf");
    std::fs::write(&conf, config).expect("config");
    let _collectd = Daemon::start(Command::new(collectd).arg("-f").arg("-C").arg(&conf));
    let csv = dir.0.join("csv/fluxtest/curl_json-fluxstat");
    // The newest value collectd wrote for a type instance.
    let value = |prefix: &str| -> Option<f64> {
        let file =
            std::fs::read_dir(&csv).ok()?.flatten().find(|e| e.file_name().to_string_lossy().starts_with(prefix))?;
        let text = std::fs::read_to_string(file.path()).ok()?;
        text.lines().skip(1).last()?.split(',').nth(1)?.parse().ok()
    };
    let doc = metrics(addr).0;
    let checks: &[(&str, &[&str])] = &[
        ("percent-system-memory-memory_used_percentage-", &["system", "memory", "memory_used_percentage"]),
        ("memory-system-memory-memory_used-", &["system", "memory", "memory_used"]),
        ("percent-system-swap-swap_used_percentage-", &["system", "swap", "swap_used_percentage"]),
        ("gauge-system-load-load_5-", &["system", "load", "load_5"]),
        ("uptime-system-uptime-", &["system", "uptime"]),
        ("temperature-system-temperature-coretemp_package_id_0-", &["system", "temperature", "coretemp_package_id_0"]),
        ("total_bytes-system-network-enp3s0-rx_bytes-", &["system", "network", "enp3s0", "rx_bytes"]),
    ];
    wait_until("collectd's CSV values", Duration::from_secs(30), || checks.iter().all(|(p, _)| value(p).is_some()));
    for (prefix, path) in checks {
        let want = as_f64(at(&doc, path));
        let got = value(prefix).expect("value");
        assert!((got - want).abs() <= want.abs() * 1e-6, "{prefix}: collectd wrote {got}, /metrics says {want}");
    }
    assert!(value("percent-system-cpu-cpu_usage_percentage-").is_some_and(|c| (0.0..=100.0).contains(&c)));
}

/// The README's Home Assistant REST templates, rendered by Jinja2 against a real
/// `/metrics` document, give the document's values.
#[test]
fn home_assistant_rest_templates_render_the_documents_values() {
    if skip_emulated() {
        return;
    }
    let Some(python) = tool("python3") else { return };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let venv = root.join("target/push-venv");
    let py = venv.join("bin/python");
    let has_jinja = |p: &Path| {
        Command::new(p).args(["-c", "import jinja2, yaml"]).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
    };
    if !has_jinja(&py) {
        let made = Command::new(&python)
            .args(["-m", "venv"])
            .arg(&venv)
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
            && Command::new(venv.join("bin/pip"))
                .args(["install", "-q", "jinja2", "pyyaml"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
        if !made || !has_jinja(&py) {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but Jinja2 could not be installed into {}",
                venv.display()
            );
            eprintln!(
                "skipping: no venv with Jinja2 (python3 -m venv {0}; {0}/bin/pip install jinja2 pyyaml)",
                venv.display()
            );
            return;
        }
    }
    let dir = TempDir::new("jinja");
    let (_fx, addr) = fixture_fluxstat();
    let (_, _, body) = http(addr, "GET", "/metrics", "").expect("GET /metrics");
    let doc: Value = json::from_str(&body).expect("JSON");
    let file = dir.0.join("metrics.json");
    std::fs::write(&file, &body).expect("write");
    let out = Command::new(&py)
        .arg(root.join("tests/tools/render_ha_templates.py"))
        .arg(root.join("README.md"))
        .arg(&file)
        .output()
        .expect("python");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rendered: std::collections::BTreeMap<String, String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('\t').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect();
    let num = |name: &str| -> f64 {
        let v = rendered.get(name).unwrap_or_else(|| panic!("{name} not rendered: {rendered:?}"));
        v.parse().unwrap_or_else(|_| panic!("{name} rendered {v:?}, not a number"))
    };
    let objects = |path: &[&str]| match at(&doc, path) {
        Value::Object(o) => o.values().cloned().collect::<Vec<_>>(),
        _ => panic!("{path:?}"),
    };
    assert_eq!(num("Pi CPU"), as_f64(at(&doc, &["system", "cpu", "cpu_usage_percentage"])));
    assert_eq!(num("Pi memory used"), as_f64(at(&doc, &["system", "memory", "memory_used_percentage"])));
    let root_disk =
        objects(&["system", "disk", "disks"]).into_iter().find(|d| as_str(at(d, &["mount"])) == "/").expect("/");
    assert_eq!(num("Pi root disk used"), as_f64(at(&root_disk, &["usage", "used_percentage"])));
    assert_eq!(num("Pi load"), as_f64(at(&doc, &["system", "load", "load_1"])));
    assert_eq!(num("Pi uptime"), as_f64(at(&doc, &["system", "uptime"])));
    let hottest = objects(&["system", "temperature"]).iter().map(as_f64).fold(f64::MIN, f64::max);
    assert_eq!(num("Pi hottest sensor"), hottest);
    let download: f64 = objects(&["system", "network"])
        .iter()
        .filter_map(|i| match at(i, &["rx_bytes_per_second"]) {
            Value::Null => None,
            v => Some(as_f64(v)),
        })
        .sum();
    assert_eq!(num("Pi download"), download);
    assert_eq!(rendered.len(), 7, "{rendered:?}");
}
