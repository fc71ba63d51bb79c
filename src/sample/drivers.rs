//! The readers of files backed by device drivers, run together as one job on the
//! sampler's deadline worker (`worker`): temperatures, fans, the Raspberry Pi's
//! power flags, CPU frequency and Wi-Fi stations (nl80211). One job means one
//! helper thread and one wake-up per sample for all of them; a driver that
//! blocks makes all five `null` for that sample (and `/health` degraded), as a
//! stuck temperature read alone did before.
//!
//! The hwmon chips and their fan inputs are listed every 60 s and shared by the
//! fan and power readers. State that outlives a run (the lists, kept cpufreq
//! files, the netlink socket) sits behind a mutex only this job takes.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

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

/// How often the hwmon chips and fan inputs are listed again.
const RELIST: Duration = Duration::from_secs(60);

/// The job's state across runs.
pub struct Job {
    sysfs: PathBuf,
    state: Mutex<State>,
}

struct State {
    /// The hwmon chips and their fan inputs, and when they were listed.
    listed: Option<(Instant, Vec<(PathBuf, String)>, Vec<fans::Input>)>,
    cpufreq: CpuFreq,
    wifi: Wifi<Kernel>,
}

impl Job {
    pub fn new(sysfs: PathBuf) -> Job {
        let state = State { listed: None, cpufreq: CpuFreq::default(), wifi: Wifi::new(Kernel::default()) };
        Job { sysfs, state: Mutex::new(state) }
    }

    pub fn run(&self) -> Drivers {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let State { listed, cpufreq, wifi } = &mut *state;
        let (_, chips, fan_inputs) = match listed {
            Some(l) if l.0.elapsed() < RELIST => l,
            _ => {
                let chips = hwmon_chips(&self.sysfs);
                let inputs = fans::list(&chips);
                listed.insert((Instant::now(), chips, inputs))
            }
        };
        Drivers {
            temperatures: temperature::read(&self.sysfs),
            fans: fans::read(fan_inputs),
            power: power::read(&self.sysfs, chips),
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
