//! CPU frequency per logical CPU from cpufreq:
//! `<sysfs>/devices/system/cpu/cpufreq/policy<N>/` (`scaling_cur_freq`,
//! `scaling_min_freq`, `scaling_max_freq`, kHz; `affected_cpus` lists the CPUs a
//! policy drives), reported in MHz keyed `cpu<N>`.
//!
//! **What the figure is.** `scaling_cur_freq` is a point sample: the frequency at
//! the instant of the read (on ARM boards the last frequency the governor set; on
//! x86 with `intel_pstate`/`amd-pstate` the average over the last scheduler tick).
//! A core that idles between bursts can read its lowest frequency every time;
//! the figure says where the governor is, not how fast work ran during the
//! interval. `min`/`max` are the policy's current limits (`scaling_*`), which the
//! thermal framework or a user can lower; the Raspberry Pi firmware's own capping
//! does not show here (see the power family).
//!
//! CPUs of one policy share its figures (a Pi 4's four cores are one policy), so
//! one file is read per policy, kept open (`files::KeptFile`) and read again
//! from offset 0; the policy list and its limits are read again every 60 s. The
//! family is `null` where cpufreq is absent (most VMs, some router SoCs). The
//! files are the cpufreq driver's, so this reader runs under the deadline worker.

use std::path::Path;
use std::time::{Duration, Instant};

use super::files::{KeptFile, SMALL};
use super::fs::read_driver_value;
use crate::snapshot::CoreFrequency;

/// How often the policies and their limits are listed again.
const RELIST: Duration = Duration::from_secs(60);

struct Policy {
    cpus: Vec<u32>,
    current: KeptFile,
    min_khz: Option<u64>,
    max_khz: Option<u64>,
}

/// The policies found, their current-frequency files kept open.
#[derive(Default)]
pub struct CpuFreq {
    policies: Vec<Policy>,
    listed_at: Option<Instant>,
}

impl CpuFreq {
    /// The figures of every CPU, in CPU order; `None` without cpufreq.
    pub fn read(&mut self, sysfs: &Path) -> Option<Vec<CoreFrequency>> {
        if self.listed_at.is_none_or(|t| t.elapsed() >= RELIST) {
            self.list(&sysfs.join("devices/system/cpu/cpufreq"));
        }
        let mut out = Vec::new();
        for p in &mut self.policies {
            let current = p.current.read().ok().and_then(parse_khz).map(mhz);
            for &cpu in &p.cpus {
                out.push(CoreFrequency {
                    cpu,
                    current_mhz: current,
                    min_mhz: p.min_khz.map(mhz),
                    max_mhz: p.max_khz.map(mhz),
                });
            }
        }
        out.sort_by_key(|c| c.cpu);
        out.dedup_by_key(|c| c.cpu);
        (!out.is_empty()).then_some(out)
    }

    fn list(&mut self, dir: &Path) {
        self.listed_at = Some(Instant::now());
        let mut found: Vec<(u64, std::path::PathBuf)> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| Some((e.file_name().to_str()?.strip_prefix("policy")?.parse().ok()?, e.path())))
            .collect();
        found.sort_unstable();
        self.policies = found
            .into_iter()
            .filter_map(|(_, p)| {
                let cpus = parse_cpus(&read_driver_value(&p.join("affected_cpus"))?);
                let khz = |f: &str| read_driver_value(&p.join(f)).as_deref().and_then(parse_khz);
                Some(Policy {
                    cpus,
                    current: KeptFile::new(p.join("scaling_cur_freq"), SMALL),
                    min_khz: khz("scaling_min_freq"),
                    max_khz: khz("scaling_max_freq"),
                })
            })
            .collect();
    }
}

/// A cpufreq value: kHz, a whole number.
pub fn parse_khz(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// kHz to MHz, rounded.
pub fn mhz(khz: u64) -> u64 {
    khz.saturating_add(500) / 1000
}

/// `affected_cpus`: CPU numbers separated by blanks (`0 1 2 3`).
pub fn parse_cpus(text: &str) -> Vec<u32> {
    text.split_ascii_whitespace().filter_map(|n| n.parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_table() {
        assert_eq!(parse_khz("1800000\n"), Some(1_800_000));
        assert_eq!(parse_khz("<unknown>"), None);
        assert_eq!(parse_khz(""), None);
        let table: &[(u64, u64)] = &[
            (600_000, 600),
            (1_500_000, 1500),
            (2_400_000, 2400),
            (799_499, 799),
            (799_500, 800),
            (u64::MAX, 18_446_744_073_709_551),
        ];
        for &(khz, want) in table {
            assert_eq!(mhz(khz), want, "{khz}");
        }
        assert_eq!(parse_cpus("0 1 2 3\n"), [0, 1, 2, 3]);
        assert_eq!(parse_cpus("4"), [4]);
        assert_eq!(parse_cpus(""), Vec::<u32>::new());
    }
}
