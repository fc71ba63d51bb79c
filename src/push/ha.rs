//! Home Assistant's view of a sample: the MQTT state payloads and the discovery
//! configs of the sensors in them. Pure: a `Snapshot` in, topics and JSON out.
//!
//! Topics, under the base `fluxstat/<node>` (`<node>`: the host name, see `node`):
//! - `<base>/status`: `online`, retained; the last will and a clean stop set `offline`.
//! - `<base>/system`: uptime, CPU, memory, swap, load and processes in one small
//!   object (some 400 bytes, far below HA's limits).
//! - `<base>/disk/<slug>`, `<base>/net/<slug>`, `<base>/temperature/<slug>`: one
//!   small object per disk (by mount point), interface or sensor, so that no
//!   payload grows with the number of mounts and each sensor's template reads a
//!   few keys.
//!
//! Each sensor's config is retained at `<prefix>/sensor/<node>/<object_id>/config`
//! with a `unique_id` of `<node>_<object_id>`: stable across restarts because it is
//! made of the host name and the entry's own name (mount point, interface, sensor),
//! never of an index. A slug that had to change a name carries a hash of the name,
//! so that two names never share one slug.

use std::fmt::Write;

use crate::snapshot::Snapshot;

/// One sensor as HA sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    /// Unique within the node: `cpu`, `disk_root_1a2b3c4d_used_percentage`.
    pub object_id: String,
    /// Shown after the device's name: `CPU`, `Disk / used`.
    pub name: String,
    /// The state topic below the base: `system`, `disk/root_1a2b3c4d`.
    pub state: String,
    /// The key of the state object holding the value.
    pub key: &'static str,
    pub unit: Option<&'static str>,
    pub device_class: Option<&'static str>,
    pub state_class: &'static str,
}

/// The node id: the host name as a slug (`fluxstat` when the host has none).
pub fn node(s: &Snapshot) -> String {
    let host = s.host.as_ref().and_then(|h| h.hostname.as_deref()).unwrap_or("");
    if host.is_empty() {
        "fluxstat".to_owned()
    } else {
        slug(host)
    }
}

/// `[a-z0-9_]` only; a name that had to change gets `_<fnv32 of the name>`.
pub fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    let trimmed = out.trim_matches('_');
    let base = if trimmed.is_empty() { "root" } else { trimmed };
    if base == name {
        return base.to_owned();
    }
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    format!("{base}_{h:08x}")
}

/// Every sensor of the sample.
pub fn entities(s: &Snapshot) -> Vec<Entity> {
    let e = |object_id: String, name: String, state: String, key, unit, device_class, state_class| Entity {
        object_id,
        name,
        state,
        key,
        unit,
        device_class,
        state_class,
    };
    let sys = |id: &str, name: &str, key, unit, class| {
        e(id.into(), name.into(), "system".into(), key, unit, class, "measurement")
    };
    let mut out = Vec::new();
    if s.uptime.is_some() {
        out.push(e(
            "uptime".into(),
            "Uptime".into(),
            "system".into(),
            "uptime",
            Some("s"),
            Some("duration"),
            "total_increasing",
        ));
    }
    if s.cpu.is_some() {
        out.push(sys("cpu", "CPU", "cpu_usage_percentage", Some("%"), None));
    }
    if s.memory.is_some() {
        out.push(sys("memory_used_percentage", "Memory used", "memory_used_percentage", Some("%"), None));
        out.push(sys("memory_available", "Memory available", "memory_available", Some("B"), Some("data_size")));
    }
    if s.swap.is_some_and(|w| w.total > 0) {
        out.push(sys("swap_used_percentage", "Swap used", "swap_used_percentage", Some("%"), None));
    }
    if s.load.is_some() {
        out.push(sys("load_1", "Load (1 min)", "load_1", None, None));
        out.push(sys("load_5", "Load (5 min)", "load_5", None, None));
        out.push(sys("load_15", "Load (15 min)", "load_15", None, None));
    }
    if s.processes.is_some() {
        out.push(sys("processes", "Processes", "processes_total", None, None));
    }
    for d in s.disks.iter().flatten() {
        let g = slug(&d.mount);
        let state = format!("disk/{g}");
        let m = &d.mount;
        out.push(e(
            format!("disk_{g}_used_percentage"),
            format!("Disk {m} used"),
            state.clone(),
            "used_percentage",
            Some("%"),
            None,
            "measurement",
        ));
        out.push(e(
            format!("disk_{g}_free"),
            format!("Disk {m} free"),
            state,
            "free",
            Some("B"),
            Some("data_size"),
            "measurement",
        ));
    }
    for i in s.network.iter().flatten() {
        let g = slug(&i.name);
        let state = format!("net/{g}");
        let n = &i.name;
        let rate = |dir: &str, key| {
            e(
                format!("net_{g}_{dir}"),
                format!("{n} {dir}"),
                state.clone(),
                key,
                Some("B/s"),
                Some("data_rate"),
                "measurement",
            )
        };
        out.push(rate("rx", "rx_bytes_per_second"));
        out.push(rate("tx", "tx_bytes_per_second"));
    }
    for t in s.temperatures.iter().flatten() {
        let g = slug(&t.name);
        out.push(e(
            format!("temperature_{g}"),
            format!("Temperature {}", t.name),
            format!("temperature/{g}"),
            "celsius",
            Some("°C"),
            Some("temperature"),
            "measurement",
        ));
    }
    out
}

/// The state payloads of the sample: `(topic below the base, JSON)`.
pub fn states(s: &Snapshot) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut o = Obj::default();
    o.num("uptime", s.uptime.map(|u| u.to_string()));
    o.num("cpu_usage_percentage", s.cpu.as_ref().map(|c| float(c.total_percent)));
    o.num("memory_used_percentage", s.memory.map(|m| m.used_percent().to_string()));
    o.num("memory_used", s.memory.map(|m| m.used().to_string()));
    o.num("memory_available", s.memory.map(|m| m.available.to_string()));
    o.num("swap_used_percentage", s.swap.map(|w| w.used_percent().to_string()));
    o.num("swap_used", s.swap.map(|w| w.used().to_string()));
    o.num("load_1", s.load.map(|l| float(l.one)));
    o.num("load_5", s.load.map(|l| float(l.five)));
    o.num("load_15", s.load.map(|l| float(l.fifteen)));
    o.num("processes_total", s.processes.map(|p| p.to_string()));
    out.push(("system".to_owned(), o.finish()));
    for d in s.disks.iter().flatten() {
        let mut o = Obj::default();
        o.num("used_percentage", d.usage.map(|u| u.used_percent().to_string()));
        o.num("used", d.usage.map(|u| u.used.to_string()));
        o.num("free", d.usage.map(|u| u.free.to_string()));
        o.num("total", d.usage.map(|u| u.total.to_string()));
        out.push((format!("disk/{}", slug(&d.mount)), o.finish()));
    }
    for i in s.network.iter().flatten() {
        let mut o = Obj::default();
        o.num("rx_bytes_per_second", i.rx_bytes_per_second.map(|r| r.to_string()));
        o.num("tx_bytes_per_second", i.tx_bytes_per_second.map(|r| r.to_string()));
        o.num("rx_bytes", Some(i.rx.bytes.to_string()));
        o.num("tx_bytes", Some(i.tx.bytes.to_string()));
        out.push((format!("net/{}", slug(&i.name)), o.finish()));
    }
    for t in s.temperatures.iter().flatten() {
        let mut o = Obj::default();
        o.num("celsius", Some(float(t.celsius)));
        out.push((format!("temperature/{}", slug(&t.name)), o.finish()));
    }
    out
}

/// The discovery config of `e`: `(topic, JSON)`. `expire_after`: seconds after
/// which HA shows the sensor unavailable without a new state.
pub fn config(s: &Snapshot, e: &Entity, prefix: &str, expire_after: u64) -> (String, String) {
    let node = node(s);
    let base = format!("fluxstat/{node}");
    let mut o = Obj::default();
    o.str("name", &e.name);
    o.str("unique_id", &format!("{node}_{}", e.object_id));
    o.str("state_topic", &format!("{base}/{}", e.state));
    o.str("value_template", &format!("{{{{ value_json.{} }}}}", e.key));
    if let Some(u) = e.unit {
        o.str("unit_of_measurement", u);
    }
    if let Some(c) = e.device_class {
        o.str("device_class", c);
    }
    o.str("state_class", e.state_class);
    o.str("availability_topic", &format!("{base}/status"));
    o.str("payload_available", "online");
    o.str("payload_not_available", "offline");
    o.num("expire_after", Some(expire_after.to_string()));
    let h = s.host.as_ref();
    let field = |f: fn(&crate::snapshot::Host) -> &Option<String>| h.and_then(|h| f(h).clone());
    let mut d = Obj::default();
    d.raw("identifiers", &format!("[{}]", quote(&format!("fluxstat_{node}"))));
    d.str("name", &field(|h| &h.hostname).unwrap_or_else(|| node.clone()));
    d.str("manufacturer", "fluxstat");
    d.str(
        "model",
        &field(|h| &h.model)
            .or_else(|| field(|h| &h.arch).map(|a| format!("Linux {a}")))
            .unwrap_or_else(|| "Linux".into()),
    );
    let os = match (field(|h| &h.os), field(|h| &h.kernel)) {
        (Some(os), Some(k)) => format!("{os} (kernel {k})"),
        (Some(os), None) => os,
        (None, Some(k)) => format!("Linux {k}"),
        (None, None) => "Linux".into(),
    };
    d.str("sw_version", &os);
    if let Some(a) = field(|h| &h.arch) {
        d.str("hw_version", &a);
    }
    o.raw("device", &d.finish());
    let mut origin = Obj::default();
    origin.str("name", "fluxstat");
    origin.str("sw_version", env!("CARGO_PKG_VERSION"));
    o.raw("origin", &origin.finish());
    (format!("{prefix}/sensor/{node}/{}/config", e.object_id), o.finish())
}

/// A JSON object written by hand: keys are fixed ASCII, values escaped.
#[derive(Default)]
struct Obj(String);

impl Obj {
    fn key(&mut self, k: &str) {
        self.0.push(if self.0.is_empty() { '{' } else { ',' });
        let _ = write!(self.0, "\"{k}\":");
    }
    fn num(&mut self, k: &str, v: Option<String>) {
        self.key(k);
        self.0.push_str(v.as_deref().unwrap_or("null"));
    }
    fn str(&mut self, k: &str, v: &str) {
        self.key(k);
        self.0.push_str(&quote(v));
    }
    fn raw(&mut self, k: &str, json: &str) {
        self.key(k);
        self.0.push_str(json);
    }
    fn finish(mut self) -> String {
        if self.0.is_empty() {
            self.0.push('{');
        }
        self.0.push('}');
        self.0
    }
}

/// A JSON string literal.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A finite float as JSON (0 for the non-finite values the sampler never makes).
fn float(x: f64) -> String {
    if x.is_finite() {
        super::float(x)
    } else {
        "0".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{Disk, DiskUsage, Host, Sensor};

    #[test]
    fn slugs_are_stable_and_distinct() {
        assert_eq!(slug("eth0"), "eth0");
        assert_eq!(slug("/"), slug("/"));
        assert!(slug("/").starts_with("root_"));
        assert_ne!(slug("/a b"), slug("/a_b"));
        assert!(slug("/mnt/Weird,name=1").starts_with("mnt_weird_name_1_"), "{}", slug("/mnt/Weird,name=1"));
    }

    #[test]
    fn quote_escapes() {
        assert_eq!(quote("a\"b\\c\nd"), r#""a\"b\\c\u000ad""#);
    }

    #[test]
    fn configs_and_states_agree() {
        let s = Snapshot {
            host: Some(Host {
                hostname: Some("Pi 4".into()),
                os: Some("Debian".into()),
                kernel: None,
                arch: Some("aarch64".into()),
                model: None,
            }),
            disks: Some(vec![Disk {
                name: "/dev/x".into(),
                mount: "/data \"x\"".into(),
                filesystem: "ext4".into(),
                usage: Some(DiskUsage { total: 100, free: 40, used: 60 }),
                read_only: Some(false),
                inodes: None,
            }]),
            temperatures: Some(vec![Sensor { name: "cpu_thermal".into(), celsius: 50.5 }]),
            ..Snapshot::default()
        };
        let states = states(&s);
        for e in entities(&s) {
            let (topic, json) = config(&s, &e, "homeassistant", 30);
            assert!(topic.starts_with("homeassistant/sensor/pi_4_"), "{topic}");
            let state =
                states.iter().find(|(t, _)| *t == e.state).unwrap_or_else(|| panic!("no state for {}", e.state));
            assert!(state.1.contains(&format!("\"{}\":", e.key)), "{} lacks {}", state.1, e.key);
            assert!(json.contains(r#""identifiers":["fluxstat_pi_4_"#), "{json}");
            assert!(miniserde::json::from_str::<miniserde::json::Value>(&json).is_ok(), "{json}");
        }
    }
}
