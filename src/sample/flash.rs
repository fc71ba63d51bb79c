//! Flash wear where the device reports it: eMMC's `life_time` (two JEDEC
//! estimates, type A and type B memory, `0x01 0x02`) and `pre_eol_info` (`0x01`)
//! under `<sysfs>/block/mmcblk<N>/device/`.
//!
//! Levels as the standard defines them: life time 1 = 0–10 % of the estimated
//! life used, 2 = 10–20 %, … 10 = 90–100 %, 11 = exceeded (0 = not defined,
//! reported as `null`); pre-EOL 1 normal, 2 warning (80 % of reserved blocks
//! consumed), 3 urgent. SD cards (a Raspberry Pi's usual boot medium) and USB
//! sticks have no such registers: the kernel exposes nothing for them, so a
//! machine without eMMC has this family `null`. The kernel reads the registers
//! (EXT_CSD) once, at probe, so these files are plain memory; they are read with
//! the host facts, every 60 s.

use std::path::Path;

use super::fs::read_value;
use crate::snapshot::FlashWear;

/// The eMMC devices that report wear, by name.
pub fn read(sysfs: &Path) -> Option<Vec<FlashWear>> {
    let mut found: Vec<FlashWear> = std::fs::read_dir(sysfs.join("block"))
        .ok()?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let n = name.strip_prefix("mmcblk")?;
            // mmcblk0boot0, mmcblk0rpmb: areas of the same device.
            if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let device = e.path().join("device");
            let life = read_value(&device.join("life_time"));
            let eol = read_value(&device.join("pre_eol_info"));
            if life.is_none() && eol.is_none() {
                return None;
            }
            let (a, b) = life.as_deref().map(parse_life_time).unwrap_or_default();
            Some(FlashWear { name, life_time_a: a, life_time_b: b, pre_eol_info: eol.as_deref().and_then(level) })
        })
        .collect();
    found.sort_by(|x, y| x.name.cmp(&y.name));
    (!found.is_empty()).then_some(found)
}

/// `0x01 0x02` → type A and type B levels.
pub fn parse_life_time(text: &str) -> (Option<u8>, Option<u8>) {
    let mut it = text.split_ascii_whitespace();
    (it.next().and_then(level), it.next().and_then(level))
}

/// One register: `0x01`; 0 (not defined) is `None`.
pub fn level(text: &str) -> Option<u8> {
    let t = text.trim();
    let hex = t.strip_prefix("0x").unwrap_or(t);
    u8::from_str_radix(hex, 16).ok().filter(|v| *v != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_table() {
        let table: &[(&str, (Option<u8>, Option<u8>))] = &[
            ("0x01 0x01", (Some(1), Some(1))),
            ("0x0a 0x0b\n", (Some(10), Some(11))),
            ("0x00 0x02", (None, Some(2))),
            ("0x03", (Some(3), None)),
            ("garbage", (None, None)),
            ("", (None, None)),
        ];
        for &(text, want) in table {
            assert_eq!(parse_life_time(text), want, "{text:?}");
        }
        assert_eq!(level("0x02"), Some(2));
        assert_eq!(level("0x100"), None);
        let wear = |l| FlashWear { name: String::new(), life_time_a: None, life_time_b: None, pre_eol_info: Some(l) };
        assert_eq!(
            [1, 2, 3, 4].map(|l| wear(l).pre_eol()),
            [Some("normal"), Some("warning"), Some("urgent"), Some("reserved")]
        );
    }
}
