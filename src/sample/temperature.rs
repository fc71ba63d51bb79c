//! Temperatures from sysfs: thermal zones (`<sysfs>/class/thermal/thermal_zone*`)
//! and hwmon chips (`<sysfs>/class/hwmon/hwmon*`), read directly because sysinfo
//! skips thermal zones whenever any hwmon sensor exists, and a Raspberry Pi's
//! `cpu_thermal` or a router's SoC often is a thermal zone.
//!
//! Names are stable per machine: a zone is named by its type (`cpu_thermal`), an
//! hwmon input by its chip and label (`coretemp_package_id_0`) or input number
//! (`nvme_temp1`), lower-cased with other characters as `_` (bytes that are not
//! UTF-8 too). A name that occurs more than once gets `_0`, `_1`, … in the order of
//! the sysfs paths, skipping a number that would repeat another sensor's name
//! (`names::make_unique`). An hwmon chip that merely mirrors a thermal zone (the
//! kernel's thermal_hwmon, same name) is skipped, so no sensor is counted twice.
//! Every file is read with a bound (`fs::read_driver_value`), so a sensor file that
//! never ends costs one short read. A read that blocks (a wedged driver) is bounded
//! in time by the deadline worker these readers run under (`sample::worker`).

use super::fs::read_driver_value as read_value;
use super::names;
use std::path::{Path, PathBuf};

use crate::snapshot::Sensor;

/// One raw reading before naming: where it came from and its millidegrees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raw {
    pub name: String,
    pub millidegrees: i64,
}

pub fn read(sysfs: &Path) -> Option<Vec<Sensor>> {
    let zones = read_zones(&sysfs.join("class/thermal"));
    let zone_names: Vec<String> = zones.iter().map(|r| r.name.clone()).collect();
    let mut raw = zones;
    raw.extend(read_hwmon(&sysfs.join("class/hwmon"), &zone_names));
    Some(name_and_convert(raw))
}

fn sorted_entries(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut v: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let n = name.strip_prefix(prefix)?.parse::<u64>().ok()?;
            Some((n, e.path()))
        })
        .collect();
    names::sort_by_key(&mut v, |e| &e.0);
    v.into_iter().map(|(_, p)| p).collect()
}

fn read_milli(path: &Path) -> Option<i64> {
    read_value(path)?.parse().ok()
}

fn read_zones(dir: &Path) -> Vec<Raw> {
    sorted_entries(dir, "thermal_zone")
        .into_iter()
        .filter_map(|zone| {
            let name = sanitize(&read_value(&zone.join("type"))?);
            Some(Raw { name, millidegrees: read_milli(&zone.join("temp"))? })
        })
        .collect()
}

fn read_hwmon(dir: &Path, zone_names: &[String]) -> Vec<Raw> {
    let mut out = Vec::new();
    for chip in sorted_entries(dir, "hwmon") {
        let Some(chip_name) = read_value(&chip.join("name")).map(|n| sanitize(&n)) else { continue };
        if zone_names.contains(&chip_name) {
            continue;
        }
        let mut inputs: Vec<(u64, String)> = std::fs::read_dir(&chip)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let f = e.file_name().into_string().ok()?;
                let n = f.strip_prefix("temp")?.strip_suffix("_input")?.parse::<u64>().ok()?;
                Some((n, f))
            })
            .collect();
        names::sort_by_key(&mut inputs, |e| &e.0);
        for (n, file) in inputs {
            let Some(milli) = read_milli(&chip.join(&file)) else { continue };
            let label = read_value(&chip.join(format!("temp{n}_label"))).map(|l| sanitize(&l));
            let name = match label {
                Some(l) => format!("{chip_name}_{l}"),
                None => format!("{chip_name}_temp{n}"),
            };
            out.push(Raw { name, millidegrees: milli });
        }
    }
    out
}

/// Lower case; anything but letters and digits becomes `_`; runs collapse.
pub fn sanitize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_owned()
}

/// The readings published: strictly above absolute zero (−273.15 °C, which a
/// rounded −273150 m°C would show as −273.2) and at most 1000 °C (drivers use more
/// for "no sensor"), compared on the exact millidegrees.
pub fn plausible(millidegrees: i64) -> bool {
    millidegrees > -273_150 && millidegrees <= 1_000_000
}

/// Converts to °C with one decimal, drops implausible readings, makes names unique
/// (`names::make_unique`, in the order read) and sorts by name.
pub fn name_and_convert(raw: Vec<Raw>) -> Vec<Sensor> {
    let valid: Vec<Raw> = raw.into_iter().filter(|r| plausible(r.millidegrees)).collect();
    let mut unique: Vec<String> = valid.iter().map(|r| r.name.clone()).collect();
    names::make_unique(&mut unique);
    let mut sensors: Vec<Sensor> = valid
        .iter()
        .zip(unique)
        // i64 millidegrees to f64 is exact in this range.
        .map(|(r, name)| Sensor { name, celsius: (r.millidegrees as f64 / 100.0).round() / 10.0 })
        .collect();
    names::sort_by_key(&mut sensors, |s| s.name.as_str());
    sensors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_table() {
        let table: &[(&str, &str)] = &[
            ("cpu-thermal", "cpu_thermal"),
            ("Package id 0", "package_id_0"),
            ("x86_pkg_temp", "x86_pkg_temp"),
            ("  Core  1 ", "core_1"),
            ("mt7915_phy0", "mt7915_phy0"),
        ];
        for &(input, want) in table {
            assert_eq!(sanitize(input), want);
        }
    }

    #[test]
    fn convert_and_name_table() {
        let raw = |name: &str, m: i64| Raw { name: name.into(), millidegrees: m };
        let got = name_and_convert(vec![
            raw("cpu_thermal", 48_312),
            raw("acpitz", 27_800),
            raw("acpitz", 29_850),
            raw("broken", -274_000),
            raw("nosensor", 1_000_001),
            raw("cold", -5_049),
        ]);
        let pairs: Vec<(&str, f64)> = got.iter().map(|s| (s.name.as_str(), s.celsius)).collect();
        assert_eq!(pairs, [("acpitz_0", 27.8), ("acpitz_1", 29.9), ("cold", -5.0), ("cpu_thermal", 48.3)]);
    }

    // Issue 10: −273150 m°C passed the "below −273.15" filter and showed as −273.2.
    #[test]
    fn plausible_boundaries() {
        let table: &[(i64, Option<f64>)] = &[
            (-273_151, None),
            (-273_150, None),
            (-273_149, Some(-273.1)),
            (-273_100, Some(-273.1)),
            (-5_050, Some(-5.1)),
            (-5_049, Some(-5.0)),
            (0, Some(0.0)),
            (999_949, Some(999.9)),
            (999_950, Some(1000.0)),
            (1_000_000, Some(1000.0)),
            (1_000_001, None),
            (i64::MIN, None),
            (i64::MAX, None),
        ];
        for &(m, want) in table {
            let got = name_and_convert(vec![Raw { name: "t".into(), millidegrees: m }]);
            assert_eq!(got.first().map(|s| s.celsius), want, "{m} m°C");
            assert!(got.iter().all(|s| (-273.15..=1000.0).contains(&s.celsius)));
        }
    }

    // Issue 10: zones of type soc, soc and "soc 0" gave two "soc_0" keys.
    #[test]
    fn duplicate_names_never_collide() {
        let raw = |name: &str, m: i64| Raw { name: sanitize(name), millidegrees: m };
        let got = name_and_convert(vec![raw("soc", 40_000), raw("soc", 41_000), raw("soc 0", 99_000)]);
        let pairs: Vec<(&str, f64)> = got.iter().map(|s| (s.name.as_str(), s.celsius)).collect();
        assert_eq!(pairs, [("soc_0", 99.0), ("soc_1", 40.0), ("soc_2", 41.0)]);
    }
}
