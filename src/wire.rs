//! The JSON wire format: the one place that knows the document's shape and the
//! one place that derives miniserde. A change of the JSON shape is a diff here plus
//! the golden fixture `tests/fixtures/metrics.json`.
//!
//! Runs on the sampler thread, once per sample; the responder only copies the bytes
//! this module produced.

use std::borrow::Cow;

use miniserde::ser::{Fragment, Map};
use miniserde::{json, Serialize};

#[cfg(feature = "push")]
use crate::snapshot::Pushed;
use crate::snapshot::{
    BlockDevice, Conntrack, CoreFrequency, Counters, Cpu, Disk, Fan, FlashWear, Host, Interface, Load, Memory, Own,
    Power, Radio, Sensor, Snapshot, Swap,
};

/// Serialises a snapshot into the `/metrics` document.
pub fn encode(snapshot: &Snapshot) -> Vec<u8> {
    let doc = Document {
        system: System {
            uptime: snapshot.uptime,
            cpu: snapshot.cpu.as_ref().map(CpuJson::from),
            memory: snapshot.memory.as_ref().map(MemoryJson::from),
            disk: snapshot
                .disks
                .as_deref()
                .map(|disks| DiskJson { disks_total: disks.len() as u64, disks: Disks(disks) }),
            swap: snapshot.swap.as_ref().map(SwapJson::from),
            load: snapshot.load.as_ref().map(LoadJson::from),
            network: snapshot.network.as_deref().map(|ifs| Named(ifs.iter().map(interface).collect())),
            temperature: snapshot.temperatures.as_deref().map(|ts| Named(ts.iter().map(temperature).collect())),
            host: snapshot.host.as_ref().map(HostJson::from),
            processes: snapshot.processes.map(|n| ProcessesJson { processes_total: n }),
            power: snapshot.power.as_ref().map(PowerJson::from),
            cpu_frequency: snapshot.cpu_frequency.as_deref().map(|c| Named(c.iter().map(frequency).collect())),
            fans: snapshot.fans.as_deref().map(|f| Named(f.iter().map(fan).collect())),
            disk_io: snapshot.disk_io.as_deref().map(|d| Named(d.iter().map(block_device).collect())),
            flash: snapshot.flash.as_deref().map(|f| Named(f.iter().map(flash).collect())),
            conntrack: snapshot.conntrack.as_ref().map(ConntrackJson::from),
            dhcp: snapshot.dhcp_leases.map(|leases| DhcpJson { leases }),
            wifi: snapshot.wifi.as_deref().map(|w| Named(w.iter().map(radio).collect())),
            reboot_required: snapshot.reboot_required,
        },
        fluxstat: FluxstatJson::from(&snapshot.own),
        updated_at: rfc3339_micros(snapshot.taken_at_us),
    };
    // The document is the sampler's largest allocation (some 210 bytes a mount):
    // keep no growth slack in the copy the responder holds for a whole interval.
    let mut body = json::to_string(&doc).into_bytes();
    body.shrink_to_fit();
    body
}

/// The body of every error response, in the original tool's shape:
/// `{"status":404,"message":"Not found"}`.
pub fn error_body(status: u16, message: &str) -> Vec<u8> {
    let body = ErrorJson { status: status.into(), message: message.to_owned() };
    json::to_string(&body).into_bytes()
}

/// The body of `/health`: the same shape as errors, plus when the last sample was
/// taken and which families of it could not be read.
pub fn health_body(status: u16, message: &str, taken_at_us: i64, unavailable: &[&str]) -> Vec<u8> {
    let body = HealthJson {
        status: status.into(),
        message: message.to_owned(),
        updated_at: rfc3339_micros(taken_at_us),
        unavailable: unavailable.iter().map(|s| (*s).to_owned()).collect(),
    };
    json::to_string(&body).into_bytes()
}

/// `2026-11-25T18:14:39.682011+00:00`: UTC, always six fractional digits and an
/// explicit offset, so Python 3.10's `datetime.fromisoformat`, JavaScript's `Date`
/// and Go's `time.RFC3339Nano` all parse it.
pub fn rfc3339_micros(unix_us: i64) -> String {
    let secs = unix_us.div_euclid(1_000_000);
    let micros = unix_us.rem_euclid(1_000_000);
    let dt = time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}+00:00",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        micros
    )
}

#[derive(Serialize)]
struct Document<'a> {
    system: System<'a>,
    fluxstat: FluxstatJson,
    updated_at: String,
}

/// The original tool's four keys first, then the sections added beside them.
#[derive(Serialize)]
struct System<'a> {
    uptime: Option<u64>,
    cpu: Option<CpuJson>,
    memory: Option<MemoryJson>,
    disk: Option<DiskJson<'a>>,
    swap: Option<SwapJson>,
    load: Option<LoadJson>,
    network: Option<Named<InterfaceJson>>,
    temperature: Option<Named<f64>>,
    host: Option<HostJson>,
    processes: Option<ProcessesJson>,
    power: Option<PowerJson>,
    cpu_frequency: Option<Named<FrequencyJson>>,
    fans: Option<Named<FanJson>>,
    disk_io: Option<Named<BlockDeviceJson>>,
    flash: Option<Named<FlashJson>>,
    conntrack: Option<ConntrackJson>,
    dhcp: Option<DhcpJson>,
    wifi: Option<Named<RadioJson>>,
    reboot_required: Option<bool>,
}

#[derive(Serialize)]
struct PowerJson {
    source: String,
    throttled_bits: Option<u64>,
    under_voltage: Option<bool>,
    frequency_capped: Option<bool>,
    throttled: Option<bool>,
    soft_temperature_limit: Option<bool>,
    under_voltage_since_boot: Option<bool>,
    frequency_capped_since_boot: Option<bool>,
    throttled_since_boot: Option<bool>,
    soft_temperature_limit_since_boot: Option<bool>,
}

impl From<&Power> for PowerJson {
    fn from(p: &Power) -> Self {
        PowerJson {
            source: p.source.to_owned(),
            throttled_bits: p.throttled_bits.map(u64::from),
            under_voltage: p.under_voltage,
            frequency_capped: p.frequency_capped,
            throttled: p.throttled,
            soft_temperature_limit: p.soft_temperature_limit,
            under_voltage_since_boot: p.under_voltage_since_boot,
            frequency_capped_since_boot: p.frequency_capped_since_boot,
            throttled_since_boot: p.throttled_since_boot,
            soft_temperature_limit_since_boot: p.soft_temperature_limit_since_boot,
        }
    }
}

#[derive(Serialize)]
struct FrequencyJson {
    current_mhz: Option<u64>,
    min_mhz: Option<u64>,
    max_mhz: Option<u64>,
}

fn frequency(c: &CoreFrequency) -> (String, FrequencyJson) {
    (format!("cpu{}", c.cpu), FrequencyJson { current_mhz: c.current_mhz, min_mhz: c.min_mhz, max_mhz: c.max_mhz })
}

#[derive(Serialize)]
struct FanJson {
    rpm: u64,
    pwm_percentage: Option<f64>,
}

fn fan(f: &Fan) -> (String, FanJson) {
    (f.name.clone(), FanJson { rpm: f.rpm, pwm_percentage: f.pwm_percent.map(finite) })
}

#[derive(Serialize)]
struct BlockDeviceJson {
    read_bytes: u64,
    written_bytes: u64,
    reads: u64,
    writes: u64,
    read_bytes_per_second: Option<u64>,
    written_bytes_per_second: Option<u64>,
    reads_per_second: Option<f64>,
    writes_per_second: Option<f64>,
    busy_percentage: Option<f64>,
}

fn block_device(d: &BlockDevice) -> (String, BlockDeviceJson) {
    let json = BlockDeviceJson {
        read_bytes: d.read_bytes,
        written_bytes: d.written_bytes,
        reads: d.reads,
        writes: d.writes,
        read_bytes_per_second: d.read_bytes_per_second,
        written_bytes_per_second: d.written_bytes_per_second,
        reads_per_second: d.reads_per_second.map(finite),
        writes_per_second: d.writes_per_second.map(finite),
        busy_percentage: d.busy_percent.map(finite),
    };
    (d.name.clone(), json)
}

#[derive(Serialize)]
struct FlashJson {
    life_time_a: Option<u64>,
    life_time_b: Option<u64>,
    pre_eol_info: Option<u64>,
    pre_eol: Option<String>,
}

fn flash(f: &FlashWear) -> (String, FlashJson) {
    let json = FlashJson {
        life_time_a: f.life_time_a.map(u64::from),
        life_time_b: f.life_time_b.map(u64::from),
        pre_eol_info: f.pre_eol_info.map(u64::from),
        pre_eol: f.pre_eol().map(str::to_owned),
    };
    (f.name.clone(), json)
}

#[derive(Serialize)]
struct ConntrackJson {
    count: u64,
    max: u64,
    used_percentage: u64,
}

impl From<&Conntrack> for ConntrackJson {
    fn from(c: &Conntrack) -> Self {
        ConntrackJson { count: c.count, max: c.max, used_percentage: c.used_percent() }
    }
}

#[derive(Serialize)]
struct DhcpJson {
    leases: u64,
}

#[derive(Serialize)]
struct RadioJson {
    stations: u64,
    signal_min_dbm: Option<i64>,
    signal_mean_dbm: Option<f64>,
    frequency_mhz: Option<u64>,
    channel: Option<u64>,
}

fn radio(r: &Radio) -> (String, RadioJson) {
    let json = RadioJson {
        stations: r.stations,
        signal_min_dbm: r.signal_min_dbm,
        signal_mean_dbm: r.signal_mean_dbm.map(finite),
        frequency_mhz: r.frequency_mhz.map(u64::from),
        channel: r.channel.map(u64::from),
    };
    (r.name.clone(), json)
}

#[derive(Serialize)]
struct CpuJson {
    cpu_core_total: u64,
    cpu_usage_percentage: f64,
    cpu_core_usage_percentage: Indexed<f64>,
}

impl From<&Cpu> for CpuJson {
    fn from(cpu: &Cpu) -> Self {
        CpuJson {
            cpu_core_total: cpu.per_core_percent.len() as u64,
            cpu_usage_percentage: finite(cpu.total_percent),
            cpu_core_usage_percentage: Indexed {
                prefix: "cpu_",
                items: cpu.per_core_percent.iter().copied().map(finite).collect(),
            },
        }
    }
}

#[derive(Serialize)]
struct MemoryJson {
    memory_free: u64,
    memory_used: u64,
    memory_total: u64,
    memory_used_percentage: u64,
    memory_available: u64,
}

impl From<&Memory> for MemoryJson {
    fn from(m: &Memory) -> Self {
        MemoryJson {
            memory_free: m.free,
            memory_used: m.used(),
            memory_total: m.total,
            memory_used_percentage: m.used_percent(),
            memory_available: m.available,
        }
    }
}

#[derive(Serialize)]
struct SwapJson {
    swap_total: u64,
    swap_used: u64,
    swap_free: u64,
    swap_used_percentage: u64,
}

impl From<&Swap> for SwapJson {
    fn from(s: &Swap) -> Self {
        SwapJson { swap_total: s.total, swap_used: s.used(), swap_free: s.free, swap_used_percentage: s.used_percent() }
    }
}

#[derive(Serialize)]
struct LoadJson {
    load_1: f64,
    load_5: f64,
    load_15: f64,
}

impl From<&Load> for LoadJson {
    fn from(l: &Load) -> Self {
        LoadJson { load_1: finite(l.one), load_5: finite(l.five), load_15: finite(l.fifteen) }
    }
}

#[derive(Serialize)]
struct InterfaceJson {
    rx_bytes: u64,
    rx_packets: u64,
    rx_errors: u64,
    rx_drops: u64,
    tx_bytes: u64,
    tx_packets: u64,
    tx_errors: u64,
    tx_drops: u64,
    rx_bytes_per_second: Option<u64>,
    tx_bytes_per_second: Option<u64>,
}

fn interface(i: &Interface) -> (String, InterfaceJson) {
    let (rx, tx): (&Counters, &Counters) = (&i.rx, &i.tx);
    let json = InterfaceJson {
        rx_bytes: rx.bytes,
        rx_packets: rx.packets,
        rx_errors: rx.errors,
        rx_drops: rx.drops,
        tx_bytes: tx.bytes,
        tx_packets: tx.packets,
        tx_errors: tx.errors,
        tx_drops: tx.drops,
        rx_bytes_per_second: i.rx_bytes_per_second,
        tx_bytes_per_second: i.tx_bytes_per_second,
    };
    (i.name.clone(), json)
}

fn temperature(s: &Sensor) -> (String, f64) {
    (s.name.clone(), finite(s.celsius))
}

#[derive(Serialize)]
struct HostJson {
    hostname: Option<String>,
    os: Option<String>,
    kernel: Option<String>,
    arch: Option<String>,
    model: Option<String>,
}

impl From<&Host> for HostJson {
    fn from(h: &Host) -> Self {
        HostJson {
            hostname: h.hostname.clone(),
            os: h.os.clone(),
            kernel: h.kernel.clone(),
            arch: h.arch.clone(),
            model: h.model.clone(),
        }
    }
}

#[derive(Serialize)]
struct ProcessesJson {
    processes_total: u64,
}

#[derive(Serialize)]
struct FluxstatJson {
    version: String,
    interval_ms: u64,
    sample_duration_us: u64,
    rss_bytes: Option<u64>,
    cpu_time_ms: Option<u64>,
    connections_open: u64,
    requests_served: u64,
    push: PushJson,
}

/// The pushers' counters: `null` for a pusher that is off.
#[cfg(feature = "push")]
#[derive(Serialize)]
struct PushJson {
    influx: Option<PushedJson>,
    mqtt: Option<PushedJson>,
}

/// Without the `push` feature: both pushers off, always `null` (the same
/// document shape for every build, at the least code).
#[cfg(not(feature = "push"))]
#[derive(Serialize)]
struct PushJson {
    influx: Option<u64>,
    mqtt: Option<u64>,
}

#[cfg(feature = "push")]
#[derive(Serialize)]
struct PushedJson {
    sent: u64,
    failed: u64,
    dropped: u64,
    queued: u64,
}

#[cfg(feature = "push")]
impl From<&Pushed> for PushedJson {
    fn from(p: &Pushed) -> Self {
        PushedJson { sent: p.sent, failed: p.failed, dropped: p.dropped, queued: p.queued }
    }
}

impl From<&Own> for FluxstatJson {
    fn from(o: &Own) -> Self {
        FluxstatJson {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            interval_ms: o.interval_ms,
            sample_duration_us: o.sample_duration_us,
            rss_bytes: o.rss_bytes,
            cpu_time_ms: o.cpu_time_ms,
            connections_open: o.connections_open,
            requests_served: o.requests_served,
            #[cfg(feature = "push")]
            push: PushJson {
                influx: o.influx.as_ref().map(PushedJson::from),
                mqtt: o.mqtt.as_ref().map(PushedJson::from),
            },
            #[cfg(not(feature = "push"))]
            push: PushJson { influx: None, mqtt: None },
        }
    }
}

#[derive(Serialize)]
struct DiskJson<'a> {
    disks_total: u64,
    disks: Disks<'a>,
}

#[derive(Serialize)]
struct DiskEntry<'a> {
    name: &'a str,
    mount: &'a str,
    filesystem: &'a str,
    /// `null` while the filesystem does not answer.
    usage: Option<UsageJson>,
    read_only: Option<bool>,
    inodes: Option<InodesJson>,
}

#[derive(Serialize)]
struct InodesJson {
    total: u64,
    used: u64,
    free: u64,
}

#[derive(Serialize)]
struct UsageJson {
    total: u64,
    free: u64,
    used: u64,
    used_percentage: u64,
}

impl<'a> From<&'a Disk> for DiskEntry<'a> {
    fn from(d: &'a Disk) -> Self {
        DiskEntry {
            name: &d.name,
            mount: &d.mount,
            filesystem: &d.filesystem,
            usage: d.usage.map(|u| UsageJson {
                total: u.total,
                free: u.free,
                used: u.used,
                used_percentage: u.used_percent(),
            }),
            read_only: d.read_only,
            inodes: d.inodes.map(|i| InodesJson { total: i.total, used: i.used(), free: i.free }),
        }
    }
}

/// The `disks` object: `disk_0`, `disk_1`, … in order, each entry built while it
/// is written, so a host with 10,000 mounts needs no second copy of their names.
struct Disks<'a>(&'a [Disk]);

impl Serialize for Disks<'_> {
    fn begin(&self) -> Fragment<'_> {
        Fragment::Map(Box::new(DisksIter { disks: self.0, next: 0, current: None }))
    }
}

struct DisksIter<'a> {
    disks: &'a [Disk],
    next: usize,
    current: Option<DiskEntry<'a>>,
}

impl Map for DisksIter<'_> {
    fn next(&mut self) -> Option<(Cow<'_, str>, &dyn Serialize)> {
        let disk = self.disks.get(self.next)?;
        let key = format!("disk_{}", self.next);
        self.next += 1;
        let entry = self.current.insert(DiskEntry::from(disk));
        Some((Cow::Owned(key), entry as &dyn Serialize))
    }
}

#[derive(Serialize)]
struct ErrorJson {
    status: u64,
    message: String,
}

#[derive(Serialize)]
struct HealthJson {
    status: u64,
    message: String,
    updated_at: String,
    unavailable: Vec<String>,
}

/// A JSON object whose keys are `<prefix>0`, `<prefix>1`, … in numeric order
/// (`cpu_2` before `cpu_10`, which a sorted map would get wrong).
struct Indexed<T> {
    prefix: &'static str,
    items: Vec<T>,
}

impl<T: Serialize> Serialize for Indexed<T> {
    fn begin(&self) -> Fragment<'_> {
        Fragment::Map(Box::new(IndexedIter { map: self, next: 0 }))
    }
}

struct IndexedIter<'a, T> {
    map: &'a Indexed<T>,
    next: usize,
}

impl<T: Serialize> Map for IndexedIter<'_, T> {
    fn next(&mut self) -> Option<(Cow<'_, str>, &dyn Serialize)> {
        let item = self.map.items.get(self.next)?;
        let key = format!("{}{}", self.map.prefix, self.next);
        self.next += 1;
        Some((Cow::Owned(key), item as &dyn Serialize))
    }
}

/// A JSON object keyed by names (interfaces, sensors), in the given order.
struct Named<T>(Vec<(String, T)>);

impl<T: Serialize> Serialize for Named<T> {
    fn begin(&self) -> Fragment<'_> {
        Fragment::Map(Box::new(NamedIter { items: self.0.iter() }))
    }
}

struct NamedIter<'a, T> {
    items: std::slice::Iter<'a, (String, T)>,
}

impl<T: Serialize> Map for NamedIter<'_, T> {
    fn next(&mut self) -> Option<(Cow<'_, str>, &dyn Serialize)> {
        let (k, v) = self.items.next()?;
        Some((Cow::Borrowed(k.as_str()), v as &dyn Serialize))
    }
}

/// The document never carries NaN or infinities: the sampler already guarantees
/// finite percentages, and this is the last line of defence.
fn finite(x: f64) -> f64 {
    if x.is_finite() {
        x
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_table() {
        let table: &[(i64, &str)] = &[
            (0, "1970-01-01T00:00:00.000000+00:00"),
            (1_664_648_079_682_011, "2022-10-01T18:14:39.682011+00:00"),
            (1_795_636_479_000_001, "2026-11-25T19:54:39.000001+00:00"),
            (951_825_600_999_999, "2000-02-29T12:00:00.999999+00:00"),
            (-1, "1969-12-31T23:59:59.999999+00:00"),
        ];
        for &(us, want) in table {
            assert_eq!(rfc3339_micros(us), want, "{us}");
        }
    }

    #[test]
    fn core_keys_are_in_numeric_order_past_ten() {
        let cpu = Cpu { total_percent: 1.0, per_core_percent: (0..12).map(f64::from).collect() };
        let json = json::to_string(&CpuJson::from(&cpu));
        let keys: Vec<usize> = json.match_indices("\"cpu_").map(|(i, _)| i).collect();
        let names: Vec<String> = keys
            .iter()
            .map(|&i| json[i + 1..].split('"').next().unwrap_or_default().to_owned())
            .filter(|k| k.starts_with("cpu_") && k[4..].chars().all(|c| c.is_ascii_digit()))
            .collect();
        let want: Vec<String> = (0..12).map(|i| format!("cpu_{i}")).collect();
        assert_eq!(names, want);
        assert!(json.contains("\"cpu_core_total\":12"));
    }

    #[test]
    fn non_finite_numbers_never_reach_the_document() {
        let cpu = Cpu { total_percent: f64::NAN, per_core_percent: vec![f64::INFINITY, 5.5] };
        let json = json::to_string(&CpuJson::from(&cpu));
        assert!(!json.contains("NaN") && !json.contains("inf") && !json.contains("null"), "{json}");
        assert!(json.contains("\"cpu_1\":5.5"), "{json}");
    }

    #[test]
    fn error_body_has_the_original_shape() {
        assert_eq!(String::from_utf8_lossy(&error_body(404, "Not found")), r#"{"status":404,"message":"Not found"}"#);
    }
}
