//! Fans from hwmon: every `fan<N>_input` (RPM) of every chip under
//! `<sysfs>/class/hwmon`, with the duty of `pwm<N>` (0–255, as a percentage)
//! where the chip has one: the Raspberry Pi 5's fan (`pwmfan`, on
//! `cooling_fan`), PC super-I/O chips (`nct6775`, `it87`).
//!
//! Keys follow the temperatures' rule (`temperature::sanitize`,
//! `names::make_unique`): chip name and label (`thinkpad_fan1` has none, so
//! `thinkpad_fan1`; `nct6798_cpu_fan`), or chip name and `fan<N>`.
//! The family is `null` on a machine without any fan input. The inputs and their
//! labels are listed with the hwmon chips (every 60 s, `drivers`); each sample
//! reads two files per fan. Fan files are backed
//! by drivers (tachometer over I²C or a PWM controller), so this reader runs under
//! the sampler's deadline worker, beside the temperatures.

use std::path::PathBuf;

use super::fs::read_driver_value;
use super::names;
use super::temperature::sanitize;
use crate::snapshot::Fan;

/// One raw reading before naming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raw {
    pub name: String,
    pub rpm: u64,
    /// `pwm<N>`, 0–255.
    pub pwm: Option<u64>,
}

/// One fan input found on a chip: its files and its name before `make_unique`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    pub name: String,
    pub input: PathBuf,
    pub pwm: PathBuf,
}

/// Lists the fan inputs of `chips` (path, sanitised name), in chip order then
/// input number; labels are read here, once per listing.
pub fn list(chips: &[(PathBuf, String)]) -> Vec<Input> {
    let mut out = Vec::new();
    for (chip, chip_name) in chips {
        let mut inputs: Vec<u64> = std::fs::read_dir(chip)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.strip_prefix("fan")?.strip_suffix("_input")?.parse().ok())
            .collect();
        inputs.sort_unstable();
        for n in inputs {
            let label = read_driver_value(&chip.join(format!("fan{n}_label"))).map(|l| sanitize(&l));
            let name = match label {
                Some(l) if !l.is_empty() => format!("{chip_name}_{l}"),
                _ => format!("{chip_name}_fan{n}"),
            };
            out.push(Input { name, input: chip.join(format!("fan{n}_input")), pwm: chip.join(format!("pwm{n}")) });
        }
    }
    out
}

/// Reads the listed fans; `None` when there is none (or none could be read).
pub fn read(inputs: &[Input]) -> Option<Vec<Fan>> {
    let raw: Vec<Raw> = inputs
        .iter()
        .filter_map(|i| {
            let rpm = read_driver_value(&i.input)?.parse().ok()?;
            let pwm = read_driver_value(&i.pwm).and_then(|v| v.parse().ok());
            Some(Raw { name: i.name.clone(), rpm, pwm })
        })
        .collect();
    (!raw.is_empty()).then(|| name_and_convert(raw))
}

/// Makes names unique, turns the PWM value into a percentage (values above 255
/// are not a duty and are dropped) and sorts by name.
pub fn name_and_convert(raw: Vec<Raw>) -> Vec<Fan> {
    let mut unique: Vec<String> = raw.iter().map(|r| r.name.clone()).collect();
    names::make_unique(&mut unique);
    let mut fans: Vec<Fan> = raw
        .into_iter()
        .zip(unique)
        .map(|(r, name)| Fan {
            name,
            rpm: r.rpm,
            // ≤ 255: exact in f64, finite.
            pwm_percent: r.pwm.filter(|p| *p <= 255).map(|p| (p as f64 * 1000.0 / 255.0).round() / 10.0),
        })
        .collect();
    names::sort_by_key(&mut fans, |f| f.name.as_str());
    fans
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn convert_and_name_table() {
        let raw = |name: &str, rpm: u64, pwm: Option<u64>| Raw { name: name.into(), rpm, pwm };
        let got = name_and_convert(vec![
            raw("pwmfan_fan1", 2_968, Some(75)),
            raw("nct6798_fan2", 0, Some(0)),
            raw("nct6798_fan2", 1_100, Some(255)),
            raw("odd_fan1", 900, Some(1_000)),
            raw("thinkpad_fan1", 2_400, None),
        ]);
        let rows: Vec<(&str, u64, Option<f64>)> = got.iter().map(|f| (f.name.as_str(), f.rpm, f.pwm_percent)).collect();
        assert_eq!(
            rows,
            [
                ("nct6798_fan2_0", 0, Some(0.0)),
                ("nct6798_fan2_1", 1_100, Some(100.0)),
                ("odd_fan1", 900, None),
                ("pwmfan_fan1", 2_968, Some(29.4)),
                ("thinkpad_fan1", 2_400, None),
            ]
        );
    }
}
