//! The readers of files backed by device drivers, run together as one job on the
//! sampler's deadline worker (`worker`): temperatures, fans, the Raspberry Pi's
//! power flags, CPU frequency and Wi-Fi stations (nl80211). One job means one
//! helper thread and one wake-up per sample for all of them; a driver that
//! blocks makes all five `null` for that sample (and `/health` degraded), as a
//! stuck temperature read alone did before.
//!
//! The hwmon chips are listed once per run and shared by the fan and power
//! readers. State that outlives a run (kept cpufreq files, the netlink socket)
//! sits behind a mutex only this job takes.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use super::cpufreq::CpuFreq;
use super::temperature::{self, sanitize};
use super::wifi::{Kernel, Wifi};
use super::{fans, fs, power};
use crate::snapshot::{CoreFrequency, Fan, Power, Radio, Sensor};

/// One run's results.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Drivers {
    pub temperatures: Option<Vec<Sensor>>,
    pub fans: Option<Vec<Fan>>,
    pub power: Option<Power>,
    pub cpu_frequency: Option<Vec<CoreFrequency>>,
    pub wifi: Option<Vec<Radio>>,
}

impl Drivers {
    /// Nothing found at all (a VM): the sampler looks again every 60 s only.
    pub fn is_empty(&self) -> bool {
        self.temperatures.as_ref().is_none_or(Vec::is_empty)
            && self.fans.is_none()
            && self.power.is_none()
            && self.cpu_frequency.is_none()
            && self.wifi.is_none()
    }
}

/// The job's state across runs.
pub struct Job {
    sysfs: PathBuf,
    state: Mutex<(CpuFreq, Wifi<Kernel>)>,
}

impl Job {
    pub fn new(sysfs: PathBuf) -> Job {
        Job { sysfs, state: Mutex::new((CpuFreq::default(), Wifi::new(Kernel::default()))) }
    }

    pub fn run(&self) -> Drivers {
        let chips = hwmon_chips(&self.sysfs);
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (cpufreq, wifi) = &mut *state;
        Drivers {
            temperatures: temperature::read(&self.sysfs),
            fans: fans::read(&chips),
            power: power::read(&self.sysfs, &chips),
            cpu_frequency: cpufreq.read(&self.sysfs),
            wifi: wifi.read(),
        }
    }
}

/// `<sysfs>/class/hwmon/hwmon<N>` in numeric order, with their sanitised names.
pub fn hwmon_chips(sysfs: &Path) -> Vec<(PathBuf, String)> {
    let mut v: Vec<(u64, PathBuf)> = std::fs::read_dir(sysfs.join("class/hwmon"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.strip_prefix("hwmon")?.parse().ok()?, e.path())))
        .collect();
    v.sort_unstable();
    v.into_iter()
        .filter_map(|(_, p)| {
            let name = sanitize(&fs::read_driver_value(&p.join("name"))?);
            Some((p, name))
        })
        .collect()
}
