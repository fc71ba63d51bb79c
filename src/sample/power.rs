//! Raspberry Pi power and throttling, from what the kernel offers without
//! `vcgencmd` or the video group:
//!
//! - the firmware's `get_throttled` bitmask,
//!   `<sysfs>/devices/platform/soc/soc:firmware/get_throttled` (hexadecimal;
//!   deprecated, absent on some kernels, and reading 0 on some firmware), and
//! - the `rpi_volt` hwmon chip's `in0_lcrit_alarm` (current kernels): 1 while the
//!   supply is below the under-voltage threshold.
//!
//! The family is `null` on machines with neither. `source` in the output names
//! what was read. Under-voltage *now* is true when either source says so; the
//! other flags and everything *since boot* come from the bitmask only (`null`
//! without it): `rpi_volt` does not latch.
//!
//! The bits (the firmware's documented layout, as `vcgencmd get_throttled`):
//!
//! | bit | meaning |
//! |---|---|
//! | 0 | under-voltage now (supply below about 4.63 V) |
//! | 1 | ARM frequency capped now |
//! | 2 | throttled now |
//! | 3 | soft temperature limit active now |
//! | 16 | under-voltage has occurred since boot |
//! | 17 | ARM frequency capping has occurred |
//! | 18 | throttling has occurred |
//! | 19 | soft temperature limit has occurred |
//!
//! Both files are backed by the firmware driver (a mailbox call for
//! `get_throttled`), so this reader runs under the sampler's deadline worker.

use std::path::{Path, PathBuf};

use super::fs::read_driver_value;
use crate::snapshot::Power;

/// Where the firmware driver puts `get_throttled`.
pub const THROTTLED: &str = "devices/platform/soc/soc:firmware/get_throttled";

/// Reads the sources the machine has; `chips` are the hwmon chips (path, name).
pub fn read(sysfs: &Path, chips: &[(PathBuf, String)]) -> Option<Power> {
    let bits = read_driver_value(&sysfs.join(THROTTLED)).and_then(|v| parse_bits(&v));
    let alarm = chips
        .iter()
        .find(|(_, name)| name == "rpi_volt")
        .and_then(|(path, _)| read_driver_value(&path.join("in0_lcrit_alarm")))
        .and_then(|v| match v.as_str() {
            "0" => Some(false),
            "1" => Some(true),
            _ => None,
        });
    combine(bits, alarm)
}

/// `0x50005`, `50005` or `0`: the firmware prints hexadecimal, with or without `0x`.
pub fn parse_bits(text: &str) -> Option<u32> {
    let t = text.trim();
    let hex = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")).unwrap_or(t);
    u32::from_str_radix(hex, 16).ok()
}

/// The family from the bitmask and the `rpi_volt` alarm; `None` with neither.
pub fn combine(bits: Option<u32>, alarm: Option<bool>) -> Option<Power> {
    let source = match (bits, alarm) {
        (None, None) => return None,
        (Some(_), None) => "get_throttled",
        (None, Some(_)) => "rpi_volt",
        (Some(_), Some(_)) => "get_throttled+rpi_volt",
    };
    let bit = |n: u32| bits.map(|b| b & (1 << n) != 0);
    let under_voltage = match (bit(0), alarm) {
        (Some(a), Some(b)) => Some(a || b),
        (a, b) => a.or(b),
    };
    Some(Power {
        source,
        throttled_bits: bits,
        under_voltage,
        frequency_capped: bit(1),
        throttled: bit(2),
        soft_temperature_limit: bit(3),
        under_voltage_since_boot: bit(16),
        frequency_capped_since_boot: bit(17),
        throttled_since_boot: bit(18),
        soft_temperature_limit_since_boot: bit(19),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_parse_table() {
        let table: &[(&str, Option<u32>)] = &[
            ("0x50005", Some(0x50005)),
            ("50000", Some(0x50000)),
            ("0", Some(0)),
            ("0x0\n", Some(0)),
            ("0xE0008", Some(0xE0008)),
            ("throttled=0x50005", None),
            ("", None),
            ("0x1000000000", None),
        ];
        for &(text, want) in table {
            assert_eq!(parse_bits(text), want, "{text:?}");
        }
    }

    #[test]
    fn flags_from_each_source() {
        assert_eq!(combine(None, None), None);
        // Under-voltage now and since boot, throttled since boot: a weak supply.
        let p = combine(Some(0x50005), None).expect("power");
        assert_eq!(p.source, "get_throttled");
        assert_eq!(
            (p.under_voltage, p.frequency_capped, p.throttled, p.soft_temperature_limit),
            (Some(true), Some(false), Some(true), Some(false))
        );
        assert_eq!(
            (
                p.under_voltage_since_boot,
                p.frequency_capped_since_boot,
                p.throttled_since_boot,
                p.soft_temperature_limit_since_boot
            ),
            (Some(true), Some(false), Some(true), Some(false))
        );
        // rpi_volt alone: now only.
        let p = combine(None, Some(true)).expect("power");
        assert_eq!((p.source, p.under_voltage, p.under_voltage_since_boot), ("rpi_volt", Some(true), None));
        // A firmware that reads 0 does not hide the alarm.
        let p = combine(Some(0), Some(true)).expect("power");
        assert_eq!((p.source, p.under_voltage, p.throttled), ("get_throttled+rpi_volt", Some(true), Some(false)));
        let p = combine(Some(0x80008), Some(false)).expect("power");
        assert_eq!(
            (p.under_voltage, p.soft_temperature_limit, p.soft_temperature_limit_since_boot),
            (Some(false), Some(true), Some(true))
        );
    }
}
