//! InfluxDB line protocol for one sample: one measurement per family, tags for
//! the host and the entry, fields with the JSON's names and units, the sample's
//! own timestamp in nanoseconds. Pure: a `Snapshot` in, bytes out.
//!
//! Escaping follows the line-protocol rules: in measurements `,` and space; in
//! tag keys, tag values and field keys `,`, `=` and space. A backslash is kept
//! as it is (InfluxDB 1.x stores `\\` as two), except where it would escape
//! what follows it (at the end of a name, or before `,` `=` or space), which
//! line protocol cannot express: there it becomes `/`. Line breaks cannot be
//! escaped anywhere: they become a space. An empty tag value is left out (the
//! protocol has none); a line without a field is not written.

use std::fmt::Write;

use crate::snapshot::Snapshot;

/// Appends the sample's lines to `out`.
pub fn encode(s: &Snapshot, out: &mut String) {
    let ns = format!(" {}\n", s.taken_at_us.saturating_mul(1000));
    let host = s.host.as_ref().and_then(|h| h.hostname.as_deref()).unwrap_or("");
    let mut line = Line { out, ns: &ns, host, begun: 0, any: false };
    if let Some(up) = s.uptime {
        line.start("uptime", &[]);
        line.int("uptime", up);
        line.end();
    }
    if let Some(cpu) = &s.cpu {
        line.start("cpu", &[]);
        line.int("cpu_core_total", cpu.per_core_percent.len() as u64);
        line.float("cpu_usage_percentage", cpu.total_percent);
        line.end();
        let mut core = String::new();
        for (i, p) in cpu.per_core_percent.iter().enumerate() {
            core.clear();
            let _ = write!(core, "cpu_{i}");
            line.start("cpu", &[("core", &core)]);
            line.float("cpu_core_usage_percentage", *p);
            line.end();
        }
    }
    if let Some(m) = &s.memory {
        line.start("memory", &[]);
        line.int("memory_free", m.free);
        line.int("memory_used", m.used());
        line.int("memory_total", m.total);
        line.int("memory_used_percentage", m.used_percent());
        line.int("memory_available", m.available);
        line.end();
    }
    if let Some(w) = &s.swap {
        line.start("swap", &[]);
        line.int("swap_total", w.total);
        line.int("swap_used", w.used());
        line.int("swap_free", w.free);
        line.int("swap_used_percentage", w.used_percent());
        line.end();
    }
    if let Some(l) = &s.load {
        line.start("load", &[]);
        line.float("load_1", l.one);
        line.float("load_5", l.five);
        line.float("load_15", l.fifteen);
        line.end();
    }
    for d in s.disks.iter().flatten() {
        line.start("disk", &[("mount", &d.mount), ("name", &d.name), ("filesystem", &d.filesystem)]);
        if let Some(u) = d.usage {
            line.int("total", u.total);
            line.int("free", u.free);
            line.int("used", u.used);
            line.int("used_percentage", u.used_percent());
        }
        if let Some(ro) = d.read_only {
            line.field("read_only", if ro { "true" } else { "false" });
        }
        if let Some(i) = d.inodes {
            line.int("inodes_total", i.total);
            line.int("inodes_used", i.used());
            line.int("inodes_free", i.free);
        }
        line.end();
    }
    for i in s.network.iter().flatten() {
        line.start("net", &[("interface", &i.name)]);
        for (names, c) in [
            (["rx_bytes", "rx_packets", "rx_errors", "rx_drops"], &i.rx),
            (["tx_bytes", "tx_packets", "tx_errors", "tx_drops"], &i.tx),
        ] {
            for (name, v) in names.into_iter().zip([c.bytes, c.packets, c.errors, c.drops]) {
                line.int(name, v);
            }
        }
        if let Some(r) = i.rx_bytes_per_second {
            line.int("rx_bytes_per_second", r);
        }
        if let Some(r) = i.tx_bytes_per_second {
            line.int("tx_bytes_per_second", r);
        }
        line.end();
    }
    for t in s.temperatures.iter().flatten() {
        line.start("temperature", &[("sensor", &t.name)]);
        line.float("celsius", t.celsius);
        line.end();
    }
    if let Some(n) = s.processes {
        line.start("processes", &[]);
        line.int("processes_total", n);
        line.end();
    }
    let o = &s.own;
    line.start("fluxstat", &[]);
    line.int("sample_duration_us", o.sample_duration_us);
    if let Some(r) = o.rss_bytes {
        line.int("rss_bytes", r);
    }
    if let Some(c) = o.cpu_time_ms {
        line.int("cpu_time_ms", c);
    }
    line.int("connections_open", o.connections_open);
    line.int("requests_served", o.requests_served);
    line.end();
}

struct Line<'a> {
    out: &'a mut String,
    /// ` <timestamp>\n`, the end of every line.
    ns: &'a str,
    host: &'a str,
    /// Where the current line starts, and whether it has a field yet.
    begun: usize,
    any: bool,
}

impl Line<'_> {
    fn start(&mut self, measurement: &str, tags: &[(&str, &str)]) {
        (self.begun, self.any) = (self.out.len(), false);
        escape(self.out, measurement, &[',', ' ']);
        let host = [("host", self.host)];
        for (k, v) in host.iter().chain(tags) {
            if v.is_empty() {
                continue;
            }
            self.out.push(',');
            escape(self.out, k, &[',', '=', ' ']);
            self.out.push('=');
            escape(self.out, v, &[',', '=', ' ']);
        }
    }

    /// Starts a field: the separator and the escaped key.
    fn key(&mut self, key: &str) {
        self.out.push(if self.any { ',' } else { ' ' });
        escape(self.out, key, &[',', '=', ' ']);
        self.out.push('=');
        self.any = true;
    }

    fn field(&mut self, key: &str, value: &str) {
        self.key(key);
        self.out.push_str(value);
    }

    fn int(&mut self, key: &str, v: u64) {
        self.key(key);
        let _ = write!(self.out, "{v}i");
    }

    /// Written as the JSON document writes it (`25.8`, `0.0`): InfluxDB reads a
    /// number without `i` as a float. Non-finite values (never produced by the
    /// sampler) are left out: the protocol has none.
    fn float(&mut self, key: &str, v: f64) {
        if v.is_finite() {
            self.key(key);
            self.out.push_str(&super::float(v));
        }
    }

    fn end(&mut self) {
        if self.any {
            self.out.push_str(self.ns);
        } else {
            self.out.truncate(self.begun);
        }
    }
}

/// Appends `s` with `special` characters escaped (see the module doc for
/// backslashes and line breaks).
fn escape(out: &mut String, s: &str, special: &[char]) {
    if !s.contains(|c: char| c == '\\' || c == '\n' || c == '\r' || special.contains(&c)) {
        out.push_str(s);
        return;
    }
    let plain = |c: char| if c == '\n' || c == '\r' { ' ' } else { c };
    let mut chars = s.chars().map(plain).peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && chars.peek().is_none_or(|n| special.contains(n)) {
            out.push('/');
            continue;
        }
        if special.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{Disk, DiskUsage, Host, Memory, Sensor};

    fn lines(s: &Snapshot) -> Vec<String> {
        let mut out = String::new();
        encode(s, &mut out);
        out.lines().map(str::to_owned).collect()
    }

    #[test]
    fn families_tags_fields_and_timestamp() {
        let s = Snapshot {
            uptime: Some(42),
            memory: Some(Memory { total: 1000, free: 100, available: 600 }),
            host: Some(Host { hostname: Some("pi".into()), os: None, kernel: None, arch: None, model: None }),
            temperatures: Some(vec![Sensor { name: "cpu_thermal".into(), celsius: 48.5 }]),
            taken_at_us: 1_700_000_000_000_001,
            ..Snapshot::default()
        };
        let l = lines(&s);
        assert_eq!(l[0], "uptime,host=pi uptime=42i 1700000000000001000");
        assert_eq!(
            l[1],
            "memory,host=pi memory_free=100i,memory_used=400i,memory_total=1000i,memory_used_percentage=40i,memory_available=600i 1700000000000001000"
        );
        assert_eq!(l[2], "temperature,host=pi,sensor=cpu_thermal celsius=48.5 1700000000000001000");
    }

    #[test]
    fn hostile_names_are_escaped() {
        let s = Snapshot {
            disks: Some(vec![Disk {
                name: "nas:/x y".into(),
                mount: "/mnt/a b,c=d\\e\\ f\\".into(),
                filesystem: "nfs".into(),
                usage: Some(DiskUsage { total: 10, free: 5, used: 5 }),
                read_only: Some(true),
                inodes: None,
            }]),
            temperatures: Some(vec![Sensor { name: "x=1,y 2\nz".into(), celsius: 1.0 }]),
            ..Snapshot::default()
        };
        let l = lines(&s);
        assert_eq!(
            l[0],
            r"disk,mount=/mnt/a\ b\,c\=d\e/\ f/,name=nas:/x\ y,filesystem=nfs total=10i,free=5i,used=5i,used_percentage=50i,read_only=true 0"
        );
        assert_eq!(l[1], r"temperature,sensor=x\=1\,y\ 2\ z celsius=1.0 0");
    }

    #[test]
    fn a_line_without_fields_is_not_written() {
        let s = Snapshot {
            disks: Some(vec![Disk {
                name: "n".into(),
                mount: "/stale".into(),
                filesystem: "nfs".into(),
                usage: None,
                read_only: None,
                inodes: None,
            }]),
            ..Snapshot::default()
        };
        let l = lines(&s);
        assert!(l.iter().all(|x| !x.starts_with("disk")), "{l:?}");
        assert!(l.iter().any(|x| x.starts_with("fluxstat ")), "{l:?}");
    }
}
