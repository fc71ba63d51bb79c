//! The readers against fixture trees of a Raspberry Pi 4 (thermal zone only), an
//! OpenWrt router (overlay/rom/tmp mounts, br-lan, hwmon + thermal) and a plain x86
//! box, and the binary pointed at one with `--procfs`/`--sysfs`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use fluxstat::sample::disk::{self, DiskFilter};
use fluxstat::sample::{Roots, Sampler, SamplerConfig};
use fluxstat::snapshot::Snapshot;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn sample(name: &str) -> (Snapshot, Snapshot) {
    let root = fixture(name);
    let roots = Roots { procfs: root.join("proc"), sysfs: root.join("sys"), rootfs: root.clone() };
    let config = SamplerConfig { roots, ..SamplerConfig::new(Duration::from_secs(1)) };
    let mut sampler = Sampler::new(config).expect("sampler");
    let first = sampler.sample();
    let second = sampler.sample();
    (first, second)
}

fn listed_mounts(name: &str) -> Vec<String> {
    let table = std::fs::read(fixture(name).join("proc/self/mountinfo")).expect("mountinfo");
    disk::select(disk::parse_mountinfo(&table), &DiskFilter::default()).into_iter().map(|m| m.mount).collect()
}

fn names<T>(items: &Option<Vec<T>>, name: impl Fn(&T) -> String) -> Vec<String> {
    items.as_ref().expect("family present").iter().map(name).collect()
}

fn temps(s: &Snapshot) -> Vec<(String, f64)> {
    s.temperatures.as_ref().expect("temperatures").iter().map(|t| (t.name.clone(), t.celsius)).collect()
}

#[test]
fn raspberry_pi_4() {
    let (s, second) = sample("rpi4");
    assert_eq!(s.uptime, Some(86_523));
    let m = s.memory.expect("memory");
    assert_eq!((m.total, m.available, m.used_percent()), (3_882_012 * 1024, 3_421_164 * 1024, 12));
    let swap = s.swap.expect("swap");
    assert_eq!((swap.total, swap.used()), (102_396 * 1024, 0));
    let load = s.load.expect("load");
    assert_eq!((load.one, load.five, load.fifteen), (0.08, 0.12, 0.09));
    assert_eq!(names(&s.network, |i| i.name.clone()), ["eth0", "wlan0"]);
    let eth0 = &s.network.as_ref().expect("network")[0];
    assert_eq!((eth0.rx.bytes, eth0.rx.drops, eth0.tx.packets), (104_857_600, 3, 40_211));
    assert_eq!(eth0.rx_bytes_per_second, None, "no rate in the first sample");
    assert_eq!(second.network.as_ref().expect("network")[0].rx_bytes_per_second, Some(0));
    assert_eq!(temps(&s), [("cpu_thermal".to_owned(), 48.3)]);
    let host = s.host.expect("host");
    assert_eq!(host.hostname.as_deref(), Some("raspberrypi"));
    assert_eq!(host.os.as_deref(), Some("Debian GNU/Linux 12 (bookworm)"));
    assert_eq!(host.kernel.as_deref(), Some("6.6.31+rpt-rpi-v8"));
    assert_eq!(host.model.as_deref(), Some("Raspberry Pi 4 Model B Rev 1.4"));
    assert_eq!(s.processes, Some(4));
    assert_eq!(listed_mounts("rpi4"), ["/", "/boot/firmware"]);
}

#[test]
fn openwrt_router() {
    let (s, _) = sample("openwrt");
    assert_eq!(s.uptime, Some(1_209_600));
    assert_eq!(s.swap.map(|w| (w.total, w.used_percent())), Some((0, 0)), "no swap: zeros");
    assert_eq!(names(&s.network, |i| i.name.clone()), ["br-lan", "eth0", "lan1", "phy0-ap0", "wan"]);
    let wifi = &s.network.as_ref().expect("network")[3];
    assert_eq!((wifi.rx.errors, wifi.tx.drops), (2, 5));
    // The hwmon chip mirroring the thermal zone is not counted twice; the SFP
    // sensor that cannot be read is left out.
    assert_eq!(
        temps(&s),
        [
            ("cpu_thermal".to_owned(), 51.7),
            ("mt7915_phy0_temp1".to_owned(), 45.0),
            ("mt7915_phy1_temp1".to_owned(), 47.0)
        ]
    );
    let host = s.host.expect("host");
    assert_eq!(host.os.as_deref(), Some("OpenWrt 23.05.3 r23809-234f1a2efa"));
    assert_eq!(host.model.as_deref(), Some("GL.iNet GL-MT6000"));
    assert_eq!(host.hostname.as_deref(), Some("OpenWrt"));
    assert_eq!(s.processes, Some(5));
    // Free flash (the ubifs overlay) and the RAM disk; not the overlay root over the
    // squashfs /rom, which would count the same flash twice.
    assert_eq!(listed_mounts("openwrt"), ["/overlay", "/tmp"]);
}

#[test]
fn plain_x86_box() {
    let (s, _) = sample("x86");
    assert_eq!(names(&s.network, |i| i.name.clone()), ["enp3s0", "wlp2s0"], "no lo, docker0 or veth");
    assert_eq!(s.network.as_ref().expect("network")[0].rx.bytes, 98_811_223_311, "beyond 32 bits");
    let swap = s.swap.expect("swap");
    assert_eq!((swap.used(), swap.used_percent()), (1_048_574 * 1024, 50));
    assert_eq!(
        temps(&s),
        [
            ("acpitz".to_owned(), 27.8),
            ("coretemp_core_0".to_owned(), 43.0),
            ("coretemp_core_1".to_owned(), 44.0),
            ("coretemp_package_id_0".to_owned(), 45.0),
            ("nvme_temp1".to_owned(), 38.9),
            ("x86_pkg_temp".to_owned(), 44.0),
        ]
    );
    assert_eq!(s.host.expect("host").model.as_deref(), Some("OptiPlex 7070"));
    assert_eq!(listed_mounts("x86"), ["/", "/boot/efi", "/home", "/mnt/backup disk"]);
}

#[test]
fn missing_files_make_families_null_not_zero() {
    crate::support::capture_logs();
    let empty = std::env::temp_dir().join(format!("fluxstat-empty-{}", std::process::id()));
    std::fs::create_dir_all(&empty).expect("temp dir");
    let roots = Roots { procfs: empty.clone(), sysfs: empty.clone(), rootfs: empty.clone() };
    let mut sampler =
        Sampler::new(SamplerConfig { roots, ..SamplerConfig::new(Duration::from_secs(1)) }).expect("sampler");
    let s = sampler.sample();
    assert_eq!(s.unavailable(), ["uptime", "memory", "swap", "load", "disk", "network"]);
    assert_eq!(s.processes, Some(0));
    assert!(s.cpu.is_some(), "CPU comes from the running kernel");
    let _ = std::fs::remove_dir_all(&empty);
}
