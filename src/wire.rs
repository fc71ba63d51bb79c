//! The JSON wire format: the one place that knows the document's shape and the
//! one place that derives miniserde. A change of the JSON shape is a diff here plus
//! the golden fixture `tests/fixtures/metrics.json`.
//!
//! Runs on the sampler thread, once per sample; the responder only copies the bytes
//! this module produced.

use std::borrow::Cow;

use miniserde::ser::{Fragment, Map};
use miniserde::{json, Serialize};

use crate::snapshot::{Cpu, Disk, Memory, Snapshot};

/// Serialises a snapshot into the `/metrics` document.
pub fn encode(snapshot: &Snapshot) -> Vec<u8> {
    let doc = Document {
        system: System {
            uptime: snapshot.uptime,
            cpu: snapshot.cpu.as_ref().map(CpuJson::from),
            memory: snapshot.memory.as_ref().map(MemoryJson::from),
            disk: snapshot.disks.as_deref().map(|disks| DiskJson {
                disks_total: disks.len() as u64,
                disks: Indexed { prefix: "disk_", items: disks.iter().map(DiskEntry::from).collect() },
            }),
        },
        updated_at: rfc3339_micros(snapshot.taken_at_us),
    };
    json::to_string(&doc).into_bytes()
}

/// The body of every error response, in the original tool's shape:
/// `{"status":404,"message":"Not found"}`.
pub fn error_body(status: u16, message: &str) -> Vec<u8> {
    let body = ErrorJson { status: status.into(), message: message.to_owned() };
    json::to_string(&body).into_bytes()
}

/// The body of `/health`: the same shape as errors, plus when the last sample was taken.
pub fn health_body(status: u16, message: &str, taken_at_us: i64) -> Vec<u8> {
    let body =
        HealthJson { status: status.into(), message: message.to_owned(), updated_at: rfc3339_micros(taken_at_us) };
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
struct Document {
    system: System,
    updated_at: String,
}

#[derive(Serialize)]
struct System {
    uptime: Option<u64>,
    cpu: Option<CpuJson>,
    memory: Option<MemoryJson>,
    disk: Option<DiskJson>,
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
}

impl From<&Memory> for MemoryJson {
    fn from(m: &Memory) -> Self {
        MemoryJson {
            memory_free: m.free,
            memory_used: m.used(),
            memory_total: m.total,
            memory_used_percentage: m.used_percent(),
        }
    }
}

#[derive(Serialize)]
struct DiskJson {
    disks_total: u64,
    disks: Indexed<DiskEntry>,
}

#[derive(Serialize)]
struct DiskEntry {
    name: String,
    mount: String,
    filesystem: String,
    usage: UsageJson,
}

#[derive(Serialize)]
struct UsageJson {
    total: u64,
    free: u64,
    used: u64,
    used_percentage: u64,
}

impl From<&Disk> for DiskEntry {
    fn from(d: &Disk) -> Self {
        DiskEntry {
            name: d.name.clone(),
            mount: d.mount.clone(),
            filesystem: d.filesystem.clone(),
            usage: UsageJson {
                total: d.usage.total,
                free: d.usage.free,
                used: d.usage.used,
                used_percentage: d.usage.used_percent(),
            },
        }
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
