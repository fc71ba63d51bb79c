//! Load averages and uptime: pure parses of `<procfs>/loadavg` and
//! `<procfs>/uptime`, which the sampler keeps open (see `files`).

use crate::snapshot::Load;

/// `0.52 0.40 0.31 2/345 6789` → the three averages, rounded to two decimals.
pub fn parse_load(text: &str) -> Option<Load> {
    let mut it = text.split_whitespace().map(hundredths);
    let mut next = || it.next().flatten().map(|h| h as f64 / 100.0);
    Some(Load { one: next()?, five: next()?, fifteen: next()? })
}

/// A non-negative decimal such as `12.345` in hundredths, rounded half up (1235).
/// The kernel prints load averages with two decimals; a hand-written parse keeps
/// the float parser and its tables (about 13 KiB on armv7) out of the binary.
fn hundredths(s: &str) -> Option<u64> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digit = |i: usize| frac.as_bytes().get(i).map_or(0, |b| u64::from(b - b'0'));
    let rounding = u64::from(digit(2) >= 5);
    whole.parse::<u64>().ok()?.checked_mul(100)?.checked_add(digit(0) * 10 + digit(1) + rounding)
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
            ("12.345 1.005 0.004 1/1 1", Some((12.35, 1.01, 0.0))),
            ("3 7.5 0.999 1/1 1", Some((3.0, 7.5, 1.0))),
            ("-1.00 0.5 0.5 1/1 1", None),
            ("1.x 0.5 0.5", None),
            (".5 0.5 0.5", None),
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
