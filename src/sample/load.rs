//! Load averages and uptime: small /proc files, a thin read and a pure parse each.

use std::path::Path;

use crate::snapshot::Load;

pub fn read_load(procfs: &Path) -> Option<Load> {
    parse_load(&std::fs::read_to_string(procfs.join("loadavg")).ok()?)
}

/// `0.52 0.40 0.31 2/345 6789` → the three averages, rounded to two decimals.
pub fn parse_load(text: &str) -> Option<Load> {
    let mut it = text.split_whitespace().map(|v| v.parse::<f64>().ok().filter(|x| x.is_finite() && *x >= 0.0));
    let mut next = || it.next().flatten().map(|x| (x * 100.0).round() / 100.0);
    Some(Load { one: next()?, five: next()?, fifteen: next()? })
}

pub fn read_uptime(procfs: &Path) -> Option<u64> {
    parse_uptime(&std::fs::read_to_string(procfs.join("uptime")).ok()?)
}

/// `947578.12 1234.5` → whole seconds since boot.
pub fn parse_uptime(text: &str) -> Option<u64> {
    let secs = text.split_whitespace().next()?;
    let whole = secs.split('.').next()?;
    whole.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_table() {
        let table: &[(&str, Option<(f64, f64, f64)>)] = &[
            ("0.52 0.40 0.31 2/345 6789\n", Some((0.52, 0.4, 0.31))),
            ("12.345 1.005 0.004 1/1 1", Some((12.35, 1.0, 0.0))),
            ("0.00 0.00 0.00 1/80 900", Some((0.0, 0.0, 0.0))),
            ("0.5 0.4", None),
            ("nan 1 1", None),
            ("", None),
        ];
        for &(text, want) in table {
            assert_eq!(parse_load(text).map(|l| (l.one, l.five, l.fifteen)), want, "{text:?}");
        }
    }

    #[test]
    fn uptime_table() {
        let table: &[(&str, Option<u64>)] = &[
            ("947578.12 1234.50\n", Some(947_578)),
            ("5 1", Some(5)),
            ("0.99 0.5", Some(0)),
            ("-1.0 0", None),
            ("", None),
        ];
        for &(text, want) in table {
            assert_eq!(parse_uptime(text), want, "{text:?}");
        }
    }
}
