//! Network interfaces from `<procfs>/net/dev`: cumulative counters, and byte rates
//! that fluxstat computes over the sample interval (LAN tools such as Home Assistant
//! or a curl script cannot).
//!
//! A rate is only published when it can be trusted: not for the first sample of an
//! interface, and not across a counter that went backwards. A backwards step is a
//! 32-bit wrap (old drivers, 32-bit kernels) when the previous value fits in 32
//! bits and the wrapped difference is less than half the 32-bit range; anything
//! else is a reset (interface recreated) and gives no rate for that interval.
//!
//! net/dev is streamed line by line (a line over 1 KiB is skipped); each interface
//! name is decoded on its own (`fs::decode`), so a name that is not UTF-8 never hides
//! the others, and the listed names are made unique (`names::make_unique`: an
//! interface listed twice is `eth0_0` and `eth0_1`) before they key the rates.

use std::path::Path;
use std::time::Instant;

use super::{fs, names};
use crate::glob::GlobList;
use crate::snapshot::{Counters, Interface};

/// Interfaces left out by default: loopback and container plumbing. Bridges such
/// as OpenWrt's `br-lan` are kept: on a router that is the LAN.
pub const DEFAULT_EXCLUDE: &str = "lo,veth*,docker*";

/// Which interfaces to list: those matching `include` (all when empty) and not `exclude`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetFilter {
    pub include: GlobList,
    pub exclude: GlobList,
}

impl Default for NetFilter {
    fn default() -> Self {
        NetFilter { include: GlobList::default(), exclude: GlobList::parse(super::DEFAULT_NET_EXCLUDE) }
    }
}

impl NetFilter {
    pub fn keeps(&self, name: &str) -> bool {
        (self.include.is_empty() || self.include.matches(name)) && !self.exclude.matches(name)
    }
}

/// Counters of the previous sample, for the rates.
#[derive(Debug, Default)]
pub struct Rates {
    previous: Vec<(String, u64, u64)>,
    at: Option<Instant>,
}

/// One line of /proc/net/dev.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevLine {
    pub name: String,
    pub rx: Counters,
    pub tx: Counters,
}

/// The longest net/dev line read (an interface name is at most 15 bytes; sixteen
/// 20-digit counters); longer lines are skipped.
const MAX_LINE: usize = 1024;
/// The most of net/dev read: some 50,000 interfaces.
const MAX_TABLE: u64 = 8 * 1024 * 1024;

/// Reads the interfaces and computes the rates since the previous call.
pub fn read(procfs: &Path, filter: &NetFilter, rates: &mut Rates, now: Instant) -> Option<Vec<Interface>> {
    let mut lines: Vec<DevLine> = Vec::new();
    let keep = |l: &DevLine| filter.keeps(&l.name);
    fs::read_lines(&procfs.join("net/dev"), MAX_LINE, MAX_TABLE, &mut |line| {
        lines.extend(parse_line(line).filter(keep))
    })
    .ok()?;
    Some(rates.update(unique_and_sorted(lines), now))
}

/// Makes the interface names unique (`names::make_unique`: an interface listed
/// twice becomes `eth0_0` and `eth0_1`) and sorts by name.
pub fn unique_and_sorted(lines: Vec<DevLine>) -> Vec<DevLine> {
    let mut names: Vec<String> = lines.iter().map(|l| l.name.clone()).collect();
    names::make_unique(&mut names);
    let mut lines: Vec<DevLine> = lines.into_iter().zip(names).map(|(l, name)| DevLine { name, ..l }).collect();
    names::sort_by_key(&mut lines, |l| l.name.as_str());
    lines
}

impl Rates {
    /// Turns this sample's counters into interfaces with rates, and remembers them.
    /// Names are expected unique; the previous counters are found by binary search.
    pub fn update(&mut self, lines: Vec<DevLine>, now: Instant) -> Vec<Interface> {
        let elapsed = self.at.map(|t| now.saturating_duration_since(t).as_secs_f64()).filter(|s| *s > 0.0);
        let previous = &self.previous;
        let out: Vec<Interface> = lines
            .into_iter()
            .map(|l| {
                let prev = previous.binary_search_by(|(n, _, _)| n.as_str().cmp(&l.name)).ok().map(|i| &previous[i]);
                let rate = |before: Option<u64>, now: u64| Some(per_second(delta(before?, now)?, elapsed?));
                Interface {
                    rx_bytes_per_second: rate(prev.map(|p| p.1), l.rx.bytes),
                    tx_bytes_per_second: rate(prev.map(|p| p.2), l.tx.bytes),
                    name: l.name,
                    rx: l.rx,
                    tx: l.tx,
                }
            })
            .collect();
        self.previous = out.iter().map(|i| (i.name.clone(), i.rx.bytes, i.tx.bytes)).collect();
        names::sort_by_key(&mut self.previous, |p| p.0.as_str());
        self.at = Some(now);
        out
    }
}

/// How much a counter grew, allowing for one 32-bit wrap; `None` for a reset.
pub fn delta(before: u64, now: u64) -> Option<u64> {
    if now >= before {
        return Some(now - before);
    }
    const WRAP: u64 = 1 << 32;
    if before < WRAP {
        let wrapped = WRAP - before + now;
        if wrapped < WRAP / 2 {
            return Some(wrapped);
        }
    }
    None
}

fn per_second(delta: u64, secs: f64) -> u64 {
    // delta ≤ 2^64 and secs > 0: finite, non-negative; `as` saturates.
    (delta as f64 / secs).round() as u64
}

/// Parses /proc/net/dev; malformed lines are skipped.
pub fn parse(text: &[u8]) -> Vec<DevLine> {
    text.split(|&b| b == b'\n').filter_map(parse_line).collect()
}

/// One line of /proc/net/dev: `name: sixteen counters`. The name is bytes to the
/// kernel (anything but `/`, `:` and blanks) and is decoded on its own
/// (`fs::decode`), so an odd name never hides the other interfaces.
pub fn parse_line(line: &[u8]) -> Option<DevLine> {
    let colon = line.iter().position(|&b| b == b':')?;
    let (name, rest) = (line[..colon].trim_ascii(), &line[colon + 1..]);
    let v: Vec<u64> =
        std::str::from_utf8(rest).ok()?.split_ascii_whitespace().map(str::parse).collect::<Result<_, _>>().ok()?;
    if v.len() < 16 || name.is_empty() {
        return None;
    }
    // Receive: bytes packets errs drop fifo frame compressed multicast;
    // transmit: bytes packets errs drop fifo colls carrier compressed.
    Some(DevLine {
        name: fs::decode(name),
        rx: Counters { bytes: v[0], packets: v[1], errors: v[2], drops: v[3] },
        tx: Counters { bytes: v[8], packets: v[9], errors: v[10], drops: v[11] },
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const DEV: &str = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0          0
  eth0: 5000000000 4000 1 2    0     0          0        12 300000 2000    3    4    0     0       0          0
br-lan:123 4 0 0 0 0 0 0 567 8 0 0 0 0 0 0
veth1a2b: 1 1 0 0 0 0 0 0 1 1 0 0 0 0 0 0
garbage line
  wlan0: 1 2 3
";

    #[test]
    fn parse_reads_counters_beyond_32_bits() {
        let lines = parse(DEV.as_bytes());
        assert_eq!(lines.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(), ["lo", "eth0", "br-lan", "veth1a2b"]);
        let eth0 = &lines[1];
        assert_eq!(eth0.rx, Counters { bytes: 5_000_000_000, packets: 4000, errors: 1, drops: 2 });
        assert_eq!(eth0.tx, Counters { bytes: 300_000, packets: 2000, errors: 3, drops: 4 });
        assert_eq!(lines[2].rx.bytes, 123, "no space after the colon");
    }

    #[test]
    fn default_filter_keeps_bridges_and_drops_plumbing() {
        let f = NetFilter::default();
        let kept: Vec<String> =
            parse(DEV.as_bytes()).into_iter().filter(|l| f.keeps(&l.name)).map(|l| l.name).collect();
        assert_eq!(kept, ["eth0", "br-lan"]);
        let only_wlan = NetFilter { include: GlobList::parse("wlan*,eth0"), exclude: GlobList::parse("eth*") };
        assert!(only_wlan.keeps("wlan0") && !only_wlan.keeps("eth0") && !only_wlan.keeps("br-lan"));
    }

    #[test]
    fn delta_table() {
        let table: &[(u64, u64, Option<u64>)] = &[
            (100, 150, Some(50)),
            (100, 100, Some(0)),
            (u64::from(u32::MAX) - 9, 5, Some(15)), // 32-bit wrap
            ((1 << 32) - 1_000_000, 2_000_000, Some(3_000_000)),
            (3_000_000_000, 10, Some(1_294_967_306)), // near the 32-bit top: a wrap
            (1_000_000_000, 10, None),                // reset: a wrap would be above 2^31
            (5_000_000_000, 100, None),               // 64-bit counter went back: reset
            (1_000, 0, None),
        ];
        for &(before, now, want) in table {
            assert_eq!(delta(before, now), want, "{before} → {now}");
        }
    }

    fn line(name: &str, rx: u64, tx: u64) -> DevLine {
        DevLine {
            name: name.into(),
            rx: Counters { bytes: rx, ..Counters::default() },
            tx: Counters { bytes: tx, ..Counters::default() },
        }
    }

    #[test]
    fn rates_across_samples_resets_and_wraps() {
        let t0 = Instant::now();
        let mut r = Rates::default();
        let first = r.update(vec![line("eth0", 1000, 0)], t0);
        assert_eq!(first[0].rx_bytes_per_second, None, "no rate without a previous sample");

        let t1 = t0 + Duration::from_millis(500);
        let second = r.update(vec![line("eth0", 2000, 100), line("wlan0", 5, 5)], t1);
        assert_eq!((second[0].rx_bytes_per_second, second[0].tx_bytes_per_second), (Some(2000), Some(200)));
        assert_eq!(second[1].rx_bytes_per_second, None, "new interface");

        // eth0 recreated (counters back to small numbers), wlan0 wraps at 32 bits.
        let t2 = t1 + Duration::from_secs(1);
        let r2 = r.update(vec![line("eth0", 10, 10), line("wlan0", 5, 5)], t2);
        assert_eq!(r2[0].rx_bytes_per_second, None, "reset: no negative or absurd rate");
        assert_eq!(r2[1].rx_bytes_per_second, Some(0));

        let t3 = t2 + Duration::from_secs(2);
        let r3 = r.update(vec![line("eth0", 4010, 10)], t3);
        assert_eq!(r3[0].rx_bytes_per_second, Some(2000));

        let wrap_start = u64::from(u32::MAX) - 999;
        let mut w = Rates::default();
        w.update(vec![line("eth0", wrap_start, 0)], t0);
        let wrapped = w.update(vec![line("eth0", 1000, 0)], t0 + Duration::from_secs(1));
        assert_eq!(wrapped[0].rx_bytes_per_second, Some(2000));

        // The same instant twice: no division by zero.
        let same = w.update(vec![line("eth0", 2000, 0)], t0 + Duration::from_secs(1));
        assert_eq!(same[0].rx_bytes_per_second, None);
    }

    // Issue 10: a non-UTF-8 interface name made the whole family null, and an
    // interface listed twice gave two "eth0" keys.
    #[test]
    fn odd_names_are_decoded_and_made_unique() {
        let dev = b"Inter-|   Receive |  Transmit\n face |bytes packets|bytes packets\n\
  eth0: 1 0 0 0 0 0 0 0 2 0 0 0 0 0 0 0\n\
wl\xe9n0: 3 0 0 0 0 0 0 0 4 0 0 0 0 0 0 0\n\
  eth0: 5 0 0 0 0 0 0 0 6 0 0 0 0 0 0 0\n\
eth0_0: 7 0 0 0 0 0 0 0 8 0 0 0 0 0 0 0\n";
        let lines = unique_and_sorted(parse(dev));
        let got: Vec<(&str, u64)> = lines.iter().map(|l| (l.name.as_str(), l.rx.bytes)).collect();
        assert_eq!(got, [("eth0_0", 7), ("eth0_1", 1), ("eth0_2", 5), ("wl\\xe9n0", 3)]);
    }
}
