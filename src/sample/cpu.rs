//! CPU usage over the last sample window, whole machine and each logical CPU: the
//! difference of two readings of `/proc/stat`, always the running kernel's (as
//! README says of `--procfs`). The file stays open and is read again from the
//! start (see `files`), so the CPU family needs no new descriptor per sample.
//!
//! Busy time is everything but idle and iowait: user, nice, system, irq, softirq
//! and steal (a hypervisor's stolen time is time this machine could not run; the
//! guest columns are already inside user and nice). `usage` turns two readings
//! into percentages, `build` rounds and validates; both are pure.

use super::files::{KeptFile, Miss, TABLE};
use crate::snapshot::Cpu;

/// Busy and total clock ticks of one CPU line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ticks {
    pub busy: u64,
    pub total: u64,
}

/// `/proc/stat`, kept open, and the previous reading.
#[derive(Debug)]
pub struct CpuReader {
    file: KeptFile,
    /// The `cpu` line, then `cpu0`, `cpu1`, …
    last: Vec<Ticks>,
}

impl Default for CpuReader {
    fn default() -> Self {
        // 64 KiB: a line per CPU, about 100 bytes each, plus the interrupt counts.
        CpuReader { file: KeptFile::new("/proc/stat".into(), TABLE * 4), last: Vec::new() }
    }
}

impl CpuReader {
    /// Reads the counters; the usage since the previous read (`None` at the first,
    /// or when the set of CPUs changed in between).
    pub fn read(&mut self) -> Result<Option<Cpu>, Miss> {
        let now = parse(self.file.read()?);
        let cpu = usage(&self.last, &now);
        self.last = now;
        Ok(cpu)
    }
}

/// The `cpu` and `cpuN` lines of /proc/stat (`cpu0 4705 150 1120 16250 520 0 7 0 0 0`).
/// Columns a kernel lacks (steal before 2.6.11) count as 0; a line that does not
/// parse ends the list.
pub fn parse(text: &str) -> Vec<Ticks> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| l.starts_with("cpu")) {
        let mut f = [0u64; 8];
        let mut fields = line.split_ascii_whitespace().skip(1);
        for slot in &mut f {
            match fields.next().map(str::parse::<u64>) {
                Some(Ok(v)) => *slot = v,
                Some(Err(_)) => return out,
                None => break,
            }
        }
        let [user, nice, system, idle, iowait, irq, softirq, steal] = f;
        let busy = user.saturating_add(nice).saturating_add(system).saturating_add(irq).saturating_add(softirq);
        let busy = busy.saturating_add(steal);
        out.push(Ticks { busy, total: busy.saturating_add(idle).saturating_add(iowait) });
    }
    out
}

/// Usage between two readings; `None` unless both have the aggregate line and
/// the same CPUs.
pub fn usage(before: &[Ticks], after: &[Ticks]) -> Option<Cpu> {
    if before.len() != after.len() || after.len() < 2 {
        return None;
    }
    let percent = |(b, a): (&Ticks, &Ticks)| {
        let total = a.total.saturating_sub(b.total);
        let busy = a.busy.saturating_sub(b.busy).min(total);
        // No ticks at all in the window (a CPU parked by the hypervisor): idle.
        if total == 0 {
            0.0
        } else {
            (busy as f64 * 100.0 / total as f64) as f32
        }
    };
    let mut all = before.iter().zip(after).map(percent);
    let total = all.next()?;
    let cores: Vec<f32> = all.collect();
    build(total, &cores)
}

/// Rounds to one decimal in f64 (rounding an f32 would print as 25.799999237060547)
/// and clamps to 0..=100. `None` when there are no CPUs or a figure is not a
/// number: a made-up 0 % would be a silently wrong figure.
pub fn build(total: f32, cores: &[f32]) -> Option<Cpu> {
    if cores.is_empty() {
        return None;
    }
    let per_core_percent = cores.iter().map(|&c| round1(c)).collect::<Option<Vec<f64>>>()?;
    Some(Cpu { total_percent: round1(total)?, per_core_percent })
}

fn round1(x: f32) -> Option<f64> {
    let x = f64::from(x);
    x.is_finite().then(|| ((x * 10.0).round() / 10.0).clamp(0.0, 100.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_table() {
        let table: &[(f32, Option<f64>)] = &[
            (25.8, Some(25.8)),
            (25.849, Some(25.8)),
            (25.85, Some(25.9)),
            (0.04, Some(0.0)),
            (0.1, Some(0.1)),
            (99.96, Some(100.0)),
            (100.0, Some(100.0)),
            (100.4, Some(100.0)),
            (-0.3, Some(0.0)),
            (f32::NAN, None),
            (f32::INFINITY, None),
        ];
        for &(input, want) in table {
            assert_eq!(round1(input), want, "{input}");
        }
    }

    #[test]
    fn rounded_values_print_short() {
        // The document must say 0.1, not 0.10000000149011612.
        let cpu = build(0.1, &[28.7]).expect("finite");
        assert_eq!(cpu.total_percent.to_string(), "0.1");
        assert_eq!(cpu.per_core_percent[0].to_string(), "28.7");
    }

    #[test]
    fn unknown_figures_make_the_family_unknown() {
        assert_eq!(build(10.0, &[]), None);
        assert_eq!(build(10.0, &[1.0, f32::NAN]), None);
        assert_eq!(build(f32::NAN, &[1.0]), None);
        assert_eq!(build(12.34, &[1.0, 2.0]).map(|c| c.per_core_percent.len()), Some(2));
    }

    const BEFORE: &str = "cpu  200 0 100 1600 100 0 0 0 0 0\n\
                          cpu0 100 0 50 800 50 0 0 0 0 0\n\
                          cpu1 100 0 50 800 50 0 0 0 0 0\n\
                          intr 12345 0 0\nctxt 999\nbtime 1700000000\n";

    #[test]
    fn parse_table() {
        assert_eq!(
            parse(BEFORE),
            [Ticks { busy: 300, total: 2000 }, Ticks { busy: 150, total: 1000 }, Ticks { busy: 150, total: 1000 }]
        );
        // irq, softirq and steal are busy; iowait is idle; guest is inside user.
        assert_eq!(parse("cpu  1 2 3 4 5 6 7 8 9 10\n"), [Ticks { busy: 27, total: 36 }]);
        // Linux 2.6.0: no steal column.
        assert_eq!(parse("cpu  1 1 1 1 1 1 1\n"), [Ticks { busy: 5, total: 7 }]);
        assert_eq!(parse("cpu  1 x 1\ncpu0 1 1 1 1\n"), []);
        assert_eq!(parse(""), []);
    }

    #[test]
    fn usage_table() {
        let before = parse(BEFORE);
        // cpu0 fully busy for 100 ticks, cpu1 idle for 100 ticks.
        let after = parse(
            "cpu  300 0 100 1700 100 0 0 0 0 0\n\
             cpu0 200 0 50 800 50 0 0 0 0 0\n\
             cpu1 100 0 50 900 50 0 0 0 0 0\n",
        );
        let cpu = usage(&before, &after).expect("usage");
        assert_eq!((cpu.total_percent, cpu.per_core_percent), (50.0, vec![100.0, 0.0]));
        assert_eq!(usage(&[], &after), None, "the first reading has no window");
        assert_eq!(usage(&before, &after[..2]), None, "a CPU went offline");
        // No ticks in the window: idle, not NaN.
        assert_eq!(usage(&before, &before).map(|c| c.total_percent), Some(0.0));
        // Counters that went backwards (a broken hypervisor) never give a negative figure.
        assert_eq!(usage(&after, &before).map(|c| c.total_percent), Some(0.0));
    }

    #[test]
    fn reads_this_machine() {
        let mut r = CpuReader::default();
        assert_eq!(r.read().ok(), Some(None), "no window yet");
        std::thread::sleep(std::time::Duration::from_millis(50));
        let cpu = r.read().expect("/proc/stat").expect("usage");
        assert!((0.0..=100.0).contains(&cpu.total_percent));
    }
}
