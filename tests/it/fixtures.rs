//! The readers against fixture trees of a Raspberry Pi 4 (thermal zone only), an
//! OpenWrt router (overlay/rom/tmp mounts, br-lan, hwmon + thermal) and a plain x86
//! box, and the binary pointed at one with `--procfs`/`--sysfs`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use fluxstat::sample::disk::{self, DiskFilter};
use fluxstat::sample::{Roots, Sampler, SamplerConfig};
use fluxstat::snapshot::Snapshot;

use crate::support::{as_str, as_u64};

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

/// The new families of a tree's second sample (rates known), as the document
/// shows them, against `tests/fixtures/<tree>/vitals.json`; everything read from
/// this machine rather than the tree (CPU usage, fluxstat's own figures, disks'
/// statvfs, Wi-Fi unless replayed) is left out.
fn golden_vitals(tree: &str, s: &Snapshot, wifi: Option<Vec<fluxstat::snapshot::Radio>>) -> Snapshot {
    let vitals = Snapshot {
        temperatures: s.temperatures.clone(),
        power: s.power.clone(),
        cpu_frequency: s.cpu_frequency.clone(),
        fans: s.fans.clone(),
        disk_io: s.disk_io.clone(),
        flash: s.flash.clone(),
        conntrack: s.conntrack,
        dhcp_leases: s.dhcp_leases,
        wifi,
        reboot_required: s.reboot_required,
        ..Snapshot::default()
    };
    let got = String::from_utf8(fluxstat::wire::encode(&vitals)).expect("UTF-8");
    let path = fixture(tree).join("vitals.json");
    // After a deliberate change: FLUXSTAT_UPDATE_GOLDEN=1 cargo test --test it fixtures::
    if std::env::var_os("FLUXSTAT_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, format!("{got}\n")).expect("write golden file");
    }
    let want = std::fs::read_to_string(&path).expect("golden file");
    assert_eq!(got, want.trim_end(), "{tree}");
    vitals
}

fn at<'a>(doc: &'a miniserde::json::Value, path: &[&str]) -> &'a miniserde::json::Value {
    crate::support::at(doc, path)
}

fn doc_of(s: &Snapshot) -> miniserde::json::Value {
    miniserde::json::from_str(&String::from_utf8(fluxstat::wire::encode(s)).expect("UTF-8")).expect("JSON")
}

#[test]
fn raspberry_pi_4_vital_signs() {
    let (_, s) = sample("rpi4");
    let v = golden_vitals("rpi4", &s, None);
    let p = v.power.as_ref().expect("power");
    // 0x50000: under-voltage and throttling have happened since boot, not now.
    assert_eq!((p.source, p.throttled_bits), ("get_throttled+rpi_volt", Some(0x50000)));
    assert_eq!(
        (p.under_voltage, p.under_voltage_since_boot, p.throttled_since_boot),
        (Some(false), Some(true), Some(true))
    );
    let f = v.cpu_frequency.as_ref().expect("cpufreq");
    assert_eq!(
        f.iter().map(|c| (c.cpu, c.current_mhz, c.max_mhz)).collect::<Vec<_>>(),
        (0..4).map(|c| (c, Some(600), Some(1800))).collect::<Vec<_>>()
    );
    // The SD card's partitions and loop/ram devices are not listed; an SD card has no wear figures.
    assert_eq!(names(&v.disk_io, |d| d.name.clone()), ["mmcblk0"]);
    assert_eq!(v.disk_io.as_ref().expect("disk_io")[0].read_bytes, 1_960_642 * 512);
    assert_eq!((v.flash.as_ref(), v.fans.as_ref(), v.conntrack, v.dhcp_leases), (None, None, None, None));
    assert_eq!(v.reboot_required, Some(true));
}

#[test]
fn raspberry_pi_5_vital_signs() {
    let (_, s) = sample("rpi5");
    let v = golden_vitals("rpi5", &s, None);
    assert_eq!(
        v.power.as_ref().map(|p| (p.source, p.under_voltage, p.throttled)),
        Some(("rpi_volt", Some(false), None))
    );
    let fans: Vec<(String, u64, Option<f64>)> =
        v.fans.as_ref().expect("fans").iter().map(|f| (f.name.clone(), f.rpm, f.pwm_percent)).collect();
    assert_eq!(fans, [("pwmfan_fan1".to_owned(), 2968, Some(29.4))]);
    assert_eq!(names(&v.disk_io, |d| d.name.clone()), ["mmcblk0"], "zram0 and loop0 left out by default");
    let mmc = &v.disk_io.as_ref().expect("disk_io")[0];
    assert_eq!((mmc.read_bytes_per_second, mmc.busy_percent), (Some(0), Some(0.0)), "counters did not move");
    assert_eq!(v.flash, None, "SD card: no wear registers");
    assert_eq!(v.reboot_required, Some(false));
    assert_eq!(temps(&v), [("cpu_thermal".to_owned(), 52.7), ("rp1_adc_temp1".to_owned(), 55.4)]);
}

#[test]
fn openwrt_router_vital_signs() {
    let (_, s) = sample("openwrt");
    let v = golden_vitals("openwrt", &s, None);
    let doc = doc_of(&v);
    assert_eq!(as_u64(at(&doc, &["system", "conntrack", "used_percentage"])), 1);
    assert_eq!(as_u64(at(&doc, &["system", "dhcp", "leases"])), 4, "the expired lease is not counted");
    assert_eq!(as_str(at(&doc, &["system", "flash", "mmcblk0", "pre_eol"])), "normal");
    assert_eq!(as_u64(at(&doc, &["system", "flash", "mmcblk0", "life_time_a"])), 1);
    let text = String::from_utf8(fluxstat::wire::encode(&v)).expect("UTF-8");
    for private in ["3c:22:fb", "192.168.8.", "iPhone", "raspberrypi"] {
        assert!(!text.contains(private), "{private} leaked: {text}");
    }
    assert_eq!(names(&v.disk_io, |d| d.name.clone()), ["mmcblk0", "mmcblk0boot0", "mmcblk0boot1"]);
    assert_eq!(names(&v.flash, |f| f.name.clone()), ["mmcblk0"], "boot areas are the same device");
    assert_eq!((v.power.as_ref(), v.cpu_frequency.as_ref(), v.reboot_required), (None, None, None));
}

#[test]
fn openwrt_access_point_vital_signs() {
    use fluxstat::sample::wifi::{Replay, Wifi};
    let (_, s) = sample("openwrt-ap");
    let replay = Replay::load(&fixture("openwrt-ap/nl80211")).expect("recorded replies");
    let wifi = Wifi::new(replay).read_now();
    let v = golden_vitals("openwrt-ap", &s, wifi);
    let radios: Vec<(String, u64, Option<i64>, Option<f64>, Option<u32>)> = v
        .wifi
        .as_ref()
        .expect("wifi")
        .iter()
        .map(|r| (r.name.clone(), r.stations, r.signal_min_dbm, r.signal_mean_dbm, r.channel))
        .collect();
    assert_eq!(
        radios,
        [
            ("phy0-ap0".to_owned(), 3, Some(-73), Some(-60.3), Some(6)),
            ("phy1-ap0".to_owned(), 2, Some(-60), Some(-56.0), Some(36)),
        ]
    );
    assert_eq!((v.conntrack, v.dhcp_leases, v.flash.as_ref()), (None, None, None), "a dumb AP");
    assert_eq!(names(&v.disk_io, |d| d.name.clone()), (0..6).map(|i| format!("mtdblock{i}")).collect::<Vec<_>>());
    let text = String::from_utf8(fluxstat::wire::encode(&v)).expect("UTF-8");
    assert!(!text.contains("HomeNet") && !text.contains("02:00:00"), "{text}");
}

#[test]
fn plain_x86_box_vital_signs() {
    let (_, s) = sample("x86");
    let v = golden_vitals("x86", &s, None);
    assert_eq!(names(&v.disk_io, |d| d.name.clone()), ["nvme0n1", "sdb"]);
    let f = v.cpu_frequency.as_ref().expect("cpufreq");
    assert_eq!(f.iter().map(|c| c.current_mhz.unwrap_or(0)).collect::<Vec<_>>(), [800, 3700, 800, 2400, 800, 4100]);
    assert_eq!(
        v.fans.as_ref().map(|f| (f[0].name.as_str(), f[0].rpm, f[0].pwm_percent)),
        Some(("dell_smm_processor_fan", 1203, Some(50.2)))
    );
    assert_eq!(v.conntrack.map(|c| (c.count, c.max)), Some((57, 262_144)));
    assert_eq!((v.power.as_ref(), v.flash.as_ref(), v.reboot_required), (None, None, Some(false)));
}
