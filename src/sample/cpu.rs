//! CPU usage over the last sample window: whole machine and each logical CPU.
//!
//! sysinfo computes usage from the difference of two /proc/stat readings; `read`
//! fetches those numbers and `build` turns them into the snapshot's figures.

use crate::snapshot::Cpu;

/// Reads the usage sysinfo computed at its last `refresh_cpu_usage`.
pub fn read(sys: &sysinfo::System) -> Option<Cpu> {
    let cores: Vec<f32> = sys.cpus().iter().map(sysinfo::Cpu::usage).collect();
    build(sys.global_cpu_usage(), &cores)
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
}
