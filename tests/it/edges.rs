//! Issue 10's edges of the sampler, end to end over a real socket: names that are
//! not UTF-8, names that collide, sysfs files that never end or are FIFOs, readings
//! at absolute zero, and a host with thousands of mounts. Also the document-wide
//! check that no object in `/metrics` has a key twice, with a small JSON walker of
//! its own, since miniserde's parser keeps only one of two equal keys.

use std::time::{Duration, Instant};

use miniserde::json::Value;

use fluxstat::snapshot::Snapshot;

use crate::support::{as_u64, at, emulated, fixed_snapshot, settings, TestServer};
// Marked `#[cfg(procfs)]`: the tests of Linux's readers (fixture trees, FIFOs,
// names that are bytes, mount namespaces), listed in cross/windows/skipped-tests.
#[cfg(procfs)]
use {
    crate::support::{as_f64, as_str, heavy, PATIENCE},
    fluxstat::published::{Latest, Published},
    fluxstat::sample::{Roots, Sampler, SamplerConfig},
    std::ffi::OsStr,
    std::os::unix::ffi::OsStrExt,
    std::path::{Path, PathBuf},
    std::process::Command,
    std::sync::Arc,
};

/// Every object of a JSON text, checked for a key that occurs twice (keys compared
/// after unescaping, so `"a"` and `"\u0061"` are the same key). `Err` names the
/// duplicate and where it is.
pub fn duplicate_keys(json: &[u8]) -> Result<(), String> {
    let mut p = Walker { s: json, i: 0 };
    p.value(0)?;
    p.ws();
    if p.i != json.len() {
        return Err(format!("trailing bytes at {}", p.i));
    }
    Ok(())
}

struct Walker<'a> {
    s: &'a [u8],
    i: usize,
}

impl Walker<'_> {
    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(|b| b" \t\r\n".contains(b)) {
            self.i += 1;
        }
    }

    fn eat(&mut self, b: u8) -> Result<(), String> {
        self.ws();
        if self.s.get(self.i) == Some(&b) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected {:?} at {}", b as char, self.i))
        }
    }

    fn value(&mut self, depth: usize) -> Result<(), String> {
        if depth > 64 {
            return Err("nested too deeply".into());
        }
        self.ws();
        match self.s.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                let mut keys: Vec<String> = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Ok(());
                }
                loop {
                    self.ws();
                    let key = self.string()?;
                    if keys.contains(&key) {
                        return Err(format!("duplicate key {key:?} in the object ending near byte {}", self.i));
                    }
                    keys.push(key);
                    self.eat(b':')?;
                    self.value(depth + 1)?;
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(());
                        }
                        _ => return Err(format!("expected , or }} at {}", self.i)),
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                self.ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(());
                }
                loop {
                    self.value(depth + 1)?;
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(());
                        }
                        _ => return Err(format!("expected , or ] at {}", self.i)),
                    }
                }
            }
            Some(b'"') => self.string().map(drop),
            Some(_) => {
                // Numbers and literals: the shape is miniserde's to check.
                let start = self.i;
                while self.s.get(self.i).is_some_and(|b| !b",]} \t\r\n".contains(b)) {
                    self.i += 1;
                }
                if start == self.i {
                    Err(format!("expected a value at {start}"))
                } else {
                    Ok(())
                }
            }
            None => Err("unexpected end".into()),
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let h = self.s.get(self.i..self.i + 4).ok_or("short \\u escape")?;
        self.i += 4;
        u32::from_str_radix(std::str::from_utf8(h).map_err(|e| e.to_string())?, 16).map_err(|e| e.to_string())
    }

    fn string(&mut self) -> Result<String, String> {
        self.eat(b'"')?;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let b = *self.s.get(self.i).ok_or("unterminated string")?;
            self.i += 1;
            match b {
                b'"' => return String::from_utf8(out).map_err(|e| e.to_string()),
                b'\\' => {
                    let e = *self.s.get(self.i).ok_or("unterminated escape")?;
                    self.i += 1;
                    let c = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            let code =
                                if (0xd800..0xdc00).contains(&hi) && self.s.get(self.i..self.i + 2) == Some(b"\\u") {
                                    self.i += 2;
                                    let lo = self.hex4()?;
                                    0x10000 + ((hi - 0xd800) << 10) + (lo.wrapping_sub(0xdc00) & 0x3ff)
                                } else {
                                    hi
                                };
                            char::from_u32(code).unwrap_or('\u{fffd}')
                        }
                        _ => return Err(format!("bad escape at {}", self.i)),
                    };
                    out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                }
                _ => out.push(b),
            }
        }
    }
}

#[test]
fn the_duplicate_key_walker_finds_duplicates() {
    let table: &[(&str, bool)] = &[
        (r#"{"a":1,"b":{"a":2}}"#, true),
        (r#"{"a":1,"a":2}"#, false),
        (r#"{"x":[{"k":1},{"k":2,"k":3}]}"#, false),
        (r#"{"a":1,"\u0061":2}"#, false),
        (r#"{"soc_0":40.0,"soc_0":99.0,"soc_1":41.0}"#, false),
        (r#"{"a\"b":1,"a\\b":2}"#, true),
        (r#"{"e":"}","f":"{\"g\":1,\"g\":2}"}"#, true),
        (r#"{"\ud83d\ude00":1,"😀":2}"#, false),
        (r#"{} x"#, false),
    ];
    for &(json, unique) in table {
        assert_eq!(duplicate_keys(json.as_bytes()).is_ok(), unique, "{json}: {:?}", duplicate_keys(json.as_bytes()));
    }
}

fn get_metrics(server: &TestServer) -> (Vec<u8>, Value) {
    let response = server.connect().get("/metrics");
    assert_eq!(response.status, 200);
    if let Err(e) = duplicate_keys(&response.body) {
        panic!("{e}: {}", String::from_utf8_lossy(&response.body));
    }
    let json = response.json();
    (response.body, json)
}

#[test]
fn the_golden_and_the_live_document_have_unique_keys() {
    let server = TestServer::fixed(settings());
    get_metrics(&server);
    let live = TestServer::sampling(settings());
    let (_, doc) = get_metrics(&live);
    assert!(as_u64(at(&doc, &["fluxstat", "interval_ms"])) > 0);
}

#[cfg(procfs)]
/// A fixture tree built at run time, since several of its names are bytes that are
/// not UTF-8 and some of its files are symlinks and FIFOs.
struct OddTree {
    root: PathBuf,
}

#[cfg(procfs)]
impl Drop for OddTree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

#[cfg(procfs)]
fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, bytes).expect("write");
}

#[cfg(procfs)]
fn zone(tree: &Path, n: usize, kind: &[u8], temp: &[u8]) {
    let zone = tree.join(format!("sys/class/thermal/thermal_zone{n}"));
    write(&zone.join("type"), kind);
    write(&zone.join("temp"), temp);
}

#[cfg(procfs)]
fn odd_tree() -> OddTree {
    let root =
        std::env::temp_dir().join(format!("fluxstat-odd-{}-{:?}", std::process::id(), std::thread::current().id()));
    let _ = std::fs::remove_dir_all(&root);
    // Mount points: real directories, so that statvfs answers; one Latin-1 name
    // (no UTF-8 twin exists, so statvfs on a decoded string would fail), one UTF-8,
    // one with a space the kernel writes as \040.
    let mut latin1 = std::os::unix::ffi::OsStringExt::into_vec(root.join("m").into_os_string());
    latin1.extend_from_slice(b"/USB caf\xe9");
    let latin1 = PathBuf::from(OsStr::from_bytes(&latin1));
    std::fs::create_dir_all(&latin1).expect("Latin-1 directory");
    std::fs::create_dir_all(root.join("m/café")).expect("UTF-8 directory");
    let m = root.join("m");
    let m = m.as_os_str().as_bytes();
    let mut mountinfo = b"22 1 8:2 / / rw - ext4 /dev/sda2 rw\n".to_vec();
    // A line longer than the reader's 64 KiB bound: skipped, not fatal.
    mountinfo.extend_from_slice(b"23 22 0:99 / /huge rw - tmpfs ");
    mountinfo.extend(std::iter::repeat_n(b'x', 70_000));
    mountinfo.extend_from_slice(b" rw\n");
    for (dev, name, source) in
        [(17, &b"USB\\040caf\xe9"[..], &b"/dev/sdb\xff"[..]), (18, "café".as_bytes(), b"/dev/sdc1")]
    {
        mountinfo.extend_from_slice(format!("3{dev} 22 8:{dev} / ").as_bytes());
        mountinfo.extend_from_slice(m);
        mountinfo.push(b'/');
        mountinfo.extend_from_slice(name);
        mountinfo.extend_from_slice(b" rw,relatime shared:1 - vfat ");
        mountinfo.extend_from_slice(source);
        mountinfo.extend_from_slice(b" rw\n");
    }
    write(&root.join("proc/self/mountinfo"), &mountinfo);
    // The other families, so that the sampler has nothing to warn about.
    let rpi4 = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rpi4/proc");
    for file in ["uptime", "meminfo", "loadavg"] {
        std::fs::copy(rpi4.join(file), root.join("proc").join(file)).expect("copy a fixture file");
    }
    let mut dev = b"Inter-|   Receive                                                |  Transmit\n \
face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n  \
eth0: 100 1 0 0 0 0 0 0 200 2 0 0 0 0 0 0\n\
wl\xe9n0: 300 3 0 0 0 0 0 0 400 4 0 0 0 0 0 0\n"
        .to_vec();
    // A line longer than the reader's 1 KiB bound: skipped, not fatal.
    dev.extend_from_slice(b"long: 1 0 0 0 0 0 0 0 1 0 0 0 0 0 0 0");
    dev.extend(std::iter::repeat_n(b' ', 2_000));
    dev.extend_from_slice(b"\n  eth0: 500 5 0 0 0 0 0 0 600 6 0 0 0 0 0 0\n");
    write(&root.join("proc/net/dev"), &dev);
    zone(&root, 0, b"soc\n", b"40000\n");
    zone(&root, 1, b"soc\n", b"41000\n");
    zone(&root, 2, b"soc 0\n", b"99000\n");
    zone(&root, 3, b"caf\xe9\n", b"30000\n");
    zone(&root, 4, b"cold\n", b"-273150\n");
    // A sensor file that never ends. (A sensor file that blocks, a FIFO, is the
    // deadline worker's case: tests/it/sampling.rs.)
    zone(&root, 5, b"endless\n", b"");
    let endless = root.join("sys/class/thermal/thermal_zone5/temp");
    std::fs::remove_file(&endless).expect("rm");
    std::os::unix::fs::symlink("/dev/zero", &endless).expect("symlink to /dev/zero");
    OddTree { root }
}

#[cfg(procfs)]
/// Samples `tree` on a thread, so that a reader that blocks fails the test
/// instead of hanging it.
fn sample_of(tree: &Path) -> Snapshot {
    let roots = Roots { procfs: tree.join("proc"), sysfs: tree.join("sys"), rootfs: tree.to_owned() };
    let config = SamplerConfig { roots, ..SamplerConfig::new(Duration::from_secs(1)) };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sampler = Sampler::new(config).expect("sampler");
        let _ = tx.send(sampler.sample());
    });
    rx.recv_timeout(PATIENCE).expect("a sample within the patience")
}

// Issue 10, items 5, 7, 8 and 9: one odd name hides a family; duplicate keys;
// −273.2 °C; a sensor file that never ends.
#[cfg(procfs)]
#[test]
fn odd_names_collisions_and_endless_files_end_to_end() {
    let tree = odd_tree();
    let started = Instant::now();
    let snapshot = sample_of(&tree.root);
    assert!(started.elapsed() < Duration::from_secs(5), "the endless sensor file was read with a bound");

    let server =
        TestServer::with_latest(Arc::new(Latest::new(Published::new(&snapshot, 1, Instant::now()))), settings());
    let (body, doc) = get_metrics(&server);

    // Disks: every mount listed, the Latin-1 one decoded with \xNN and measured
    // (statvfs was called on its bytes).
    let disks = at(&doc, &["system", "disk"]);
    assert!(matches!(disks, Value::Object(_)), "system.disk is {disks:?}");
    let mounts: Vec<(String, String, bool)> = (0..as_u64(at(disks, &["disks_total"])))
        .map(|i| {
            let d = at(disks, &["disks", &format!("disk_{i}")]);
            let mount = as_str(at(d, &["mount"]));
            let tail = mount.rsplit('/').next().unwrap_or_default().to_owned();
            (tail, as_str(at(d, &["name"])).to_owned(), !matches!(at(d, &["usage"]), Value::Null))
        })
        .collect();
    let want = [
        ("".to_owned(), "/dev/sda2".to_owned(), true),
        ("USB caf\\xe9".to_owned(), "/dev/sdb\\xff".to_owned(), true),
        ("café".to_owned(), "/dev/sdc1".to_owned(), true),
    ];
    assert_eq!(mounts, want);

    // Network: the odd name is kept, eth0 listed twice has two keys.
    let network = at(&doc, &["system", "network"]);
    let Value::Object(ifs) = network else { panic!("system.network is {network:?}") };
    let names: Vec<&str> = ifs.keys().map(String::as_str).collect();
    assert_eq!(names, ["eth0_0", "eth0_1", "wl\\xe9n0"]);
    assert_eq!(as_u64(at(network, &["eth0_1", "rx_bytes"])), 500);
    assert_eq!(as_u64(at(network, &["wl\\xe9n0", "tx_bytes"])), 400);

    // Temperatures: soc, soc and "soc 0" are three keys; −273150 m°C is not a
    // reading; the endless file is left out.
    let temps = at(&doc, &["system", "temperature"]);
    let Value::Object(t) = temps else { panic!("system.temperature is {temps:?}") };
    let readings: Vec<(&str, f64)> = t.iter().map(|(k, v)| (k.as_str(), as_f64(v))).collect();
    assert_eq!(readings, [("caf_xe9", 30.0), ("soc_0", 99.0), ("soc_1", 40.0), ("soc_2", 41.0)]);
    let text = String::from_utf8_lossy(&body);
    assert_eq!(text.matches("\"soc_0\"").count(), 1, "{text}");
    assert!(!text.contains("-273"), "{text}");
}

#[cfg(procfs)]
fn effective_uid_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("Uid:")).and_then(|l| l.split_whitespace().nth(2)).map(|u| u == "0")
        })
        .unwrap_or(false)
}

// Issue 10, item 6: thousands of mounts, in a private mount namespace (the binary
// runs under `unshare`, the mounts end with it). Every tmpfs is listed with its
// usage and none is blamed for not answering; one has a Latin-1 name.
#[cfg(procfs)]
#[test]
fn thousands_of_mounts_in_a_private_namespace() {
    let unshare_works = Command::new("unshare").arg("--version").output().is_ok_and(|o| o.status.success());
    if emulated() || !effective_uid_is_root() || !unshare_works {
        eprintln!("skipped: needs root, unshare(1) and a native run");
        return;
    }
    let _heavy = heavy();
    const N: usize = 3_000;
    let dir = std::env::temp_dir().join(format!("fluxstat-mounts-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut fstab: Vec<u8> = Vec::new();
    let mut point = |name: &[u8]| {
        let mut p = dir.as_os_str().as_bytes().to_vec();
        p.push(b'/');
        p.extend_from_slice(name);
        std::fs::create_dir_all(OsStr::from_bytes(&p)).expect("mount point");
        fstab.extend_from_slice(b"none ");
        fstab.extend_from_slice(&p);
        fstab.extend_from_slice(b" tmpfs size=64k 0 0\n");
    };
    for i in 0..N - 1 {
        point(format!("{i}").as_bytes());
    }
    point(b"caf\xe9");
    std::fs::write(dir.join("fstab"), &fstab).expect("fstab");

    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c", "mount -a -T \"$1\" && shift && exec \"$@\"", "sh"])
        .arg(dir.join("fstab"))
        .arg(env!("CARGO_BIN_EXE_fluxstat"))
        .args(["--listen", "127.0.0.1:0", "--interval", "1s"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    let mut run = crate::cli::Running::start(&mut cmd);
    let addr = run.listening_addr();

    let mut client = crate::support::Client::connect(addr);
    let first = client.get("/metrics");
    // Wait for a sample taken after the first (the sampler thread's own).
    let deadline = Instant::now() + PATIENCE;
    let response = loop {
        let r = client.get("/metrics");
        if r.header("etag") != first.header("etag") {
            break r;
        }
        assert!(Instant::now() < deadline, "no second sample");
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = run.child.kill();
    let _ = run.child.wait();
    let _ = std::fs::remove_dir_all(&dir);

    if let Err(e) = duplicate_keys(&response.body) {
        panic!("{e}");
    }
    let doc = response.json();
    let disks = at(&doc, &["system", "disk"]);
    assert!(matches!(disks, Value::Object(_)), "system.disk is {disks:?}");
    let prefix = format!("{}/", dir.display());
    let mut ours = 0;
    let mut latin1 = false;
    for i in 0..as_u64(at(disks, &["disks_total"])) {
        let d = at(disks, &["disks", &format!("disk_{i}")]);
        let mount = as_str(at(d, &["mount"]));
        if let Some(name) = mount.strip_prefix(&prefix) {
            ours += 1;
            latin1 |= name == "caf\\xe9";
            assert!(!matches!(at(d, &["usage"]), Value::Null), "{mount} reported as not answering");
            assert_eq!(as_u64(at(d, &["usage", "total"])), 64 * 1024, "{mount}");
        }
    }
    assert_eq!(ours, N, "every tmpfs listed once");
    assert!(latin1, "the Latin-1 mount point is listed");
    let sample_us = as_u64(at(&doc, &["fluxstat", "sample_duration_us"]));
    let rss = as_u64(at(&doc, &["fluxstat", "rss_bytes"]));
    eprintln!("{N} mounts: sample {sample_us} µs, RSS {} KiB", rss / 1024);
    // Generous: quiet-machine figures are some 25 ms and 8 MiB (bench/mounts.sh).
    assert!(sample_us < 1_000_000, "sample took {sample_us} µs");
    assert!(rss < 16 << 20, "RSS {rss} bytes");
}

#[cfg(procfs)]
/// The mount points listed in a `/metrics` document.
fn listed_mounts(doc: &Value) -> Vec<String> {
    let disks = at(doc, &["system", "disk"]);
    (0..as_u64(at(disks, &["disks_total"])))
        .map(|i| as_str(at(disks, &["disks", &format!("disk_{i}"), "mount"])).to_owned())
        .collect()
}

// Issue 10: the mount table is read again only when the kernel flags a change on
// the kept-open /proc/self/mountinfo. A tmpfs mounted and unmounted in fluxstat's
// own (private) mount namespace, from outside with nsenter, shows up and goes away.
#[cfg(procfs)]
#[test]
fn a_mount_and_an_unmount_are_picked_up() {
    let tools = ["unshare", "nsenter"]
        .iter()
        .all(|t| Command::new(t).arg("--version").output().is_ok_and(|o| o.status.success()));
    if emulated() || !effective_uid_is_root() || !tools {
        eprintln!("skipped: needs root, unshare(1), nsenter(1) and a native run");
        return;
    }
    let dir = std::env::temp_dir().join(format!("fluxstat-remount-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mount point");
    let mut cmd = Command::new("unshare");
    // unshare and sh exec: the child's pid is fluxstat's.
    cmd.args(["--mount", "--propagation", "private", "sh", "-c", "exec \"$@\"", "sh"])
        .arg(env!("CARGO_BIN_EXE_fluxstat"))
        .args(["--listen", "127.0.0.1:0", "--interval", "200ms"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    let mut run = crate::cli::Running::start(&mut cmd);
    let addr = run.listening_addr();
    let pid = run.child.id().to_string();
    let mut client = crate::support::Client::connect(addr);
    let mount = dir.display().to_string();
    let mut listed = |want: bool| {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let doc = client.get("/metrics").json();
            if listed_mounts(&doc).contains(&mount) == want {
                return doc;
            }
            assert!(Instant::now() < deadline, "{mount} listed: {}; wanted {want}", !want);
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let nsenter = |args: &[&str]| {
        let ok =
            Command::new("nsenter").args(["-t", &pid, "-m"]).args(args).arg(&dir).status().is_ok_and(|s| s.success());
        assert!(ok, "nsenter {args:?} failed");
    };
    listed(false);
    nsenter(&["mount", "-t", "tmpfs", "-o", "size=64k", "fluxstat-test"]);
    let doc = listed(true);
    let i = listed_mounts(&doc).iter().position(|m| *m == mount).expect("listed");
    let ours = at(&doc, &["system", "disk", "disks", &format!("disk_{i}")]);
    assert_eq!(as_u64(at(ours, &["usage", "total"])), 64 * 1024);
    nsenter(&["umount"]);
    listed(false);
    let _ = run.child.kill();
    let _ = run.child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

// Issue 10, item 12: the hardened unit's ProtectSystem=strict gives fluxstat a
// read-only view of every filesystem, and statvfs's ST_RDONLY then said
// `read_only: true` for every disk. `read_only` is the filesystem's own state.
#[cfg(procfs)]
#[test]
fn a_read_only_view_of_a_writable_disk_is_not_a_read_only_disk() {
    let unshare_works = Command::new("unshare").arg("--version").output().is_ok_and(|o| o.status.success());
    if emulated() || !effective_uid_is_root() || !unshare_works {
        eprintln!("skipped: needs root, unshare(1) and a native run");
        return;
    }
    let dir = std::env::temp_dir().join(format!("fluxstat-ro-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mount point");
    // As systemd does for ProtectSystem=strict: / bound onto itself, read-only; and
    // a filesystem that really is read-only.
    let script = "mount --bind / / && mount -o remount,bind,ro / && \
                  mount -t tmpfs -o ro,size=64k fluxstat-ro \"$1\" && shift && exec \"$@\"";
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c", script, "sh"])
        .arg(&dir)
        .arg(env!("CARGO_BIN_EXE_fluxstat"))
        .args(["--listen", "127.0.0.1:0"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    let mut run = crate::cli::Running::start(&mut cmd);
    let doc = crate::support::Client::connect(run.listening_addr()).get("/metrics").json();
    let mounts = listed_mounts(&doc);
    let read_only = |mount: &str| {
        let i = mounts.iter().position(|m| m == mount).unwrap_or_else(|| panic!("{mount} not in {mounts:?}"));
        at(&doc, &["system", "disk", "disks", &format!("disk_{i}"), "read_only"]).clone()
    };
    assert!(matches!(read_only("/"), Value::Bool(false)), "/ is writable; only fluxstat's view of it is not");
    assert!(matches!(read_only(&dir.display().to_string()), Value::Bool(true)), "a read-only tmpfs");
    let _ = run.child.kill();
    let _ = run.child.wait();
    let _ = std::fs::remove_dir(&dir);
}

/// xorshift64*: a fixed-seed generator, so a failure names its case.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) % n
    }

    /// A name from a tiny alphabet with `_`, a blank, digits and a byte that is not
    /// UTF-8, so that repeats, names that look generated and names that sanitise to
    /// the same sensor name are frequent.
    fn name(&mut self) -> Vec<u8> {
        const ALPHABET: &[u8] = b"ab_ 01\xe9";
        (0..self.below(5)).map(|_| ALPHABET[self.below(ALPHABET.len() as u64) as usize]).collect()
    }
}

// Issue 10, item 7: whatever the names, the readers' output serialises to a
// document without a duplicate key (sensors through sanitising and naming,
// interfaces through decoding, uniqueness, sorting and the rates).
#[test]
fn generated_name_sets_never_give_a_duplicate_key() {
    use fluxstat::sample::network::{self, DevLine, Rates};
    use fluxstat::sample::temperature::{self, Raw};

    let mut rng = Rng(0x5eed_f1a5_u64);
    let mut rates = Rates::default();
    let t0 = Instant::now();
    let cases: u32 = if emulated() { 200 } else { 2_000 };
    for case in 0..cases {
        let sensors: Vec<Raw> = (0..rng.below(12))
            .map(|_| Raw {
                name: temperature::sanitize(&String::from_utf8_lossy(&rng.name())),
                millidegrees: rng.below(100_000) as i64,
            })
            .collect();
        let mut dev: Vec<u8> = Vec::new();
        for _ in 0..rng.below(12) {
            let mut name = rng.name();
            name.retain(|&b| b != b' ');
            dev.extend_from_slice(&name);
            dev.extend_from_slice(b": 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n");
        }
        let lines: Vec<DevLine> = network::unique_and_sorted(network::parse(&dev));
        let snapshot = Snapshot {
            temperatures: Some(temperature::name_and_convert(sensors.clone())),
            network: Some(rates.update(lines, t0 + Duration::from_secs(u64::from(case)))),
            ..fixed_snapshot()
        };
        let doc = fluxstat::wire::encode(&snapshot);
        if let Err(e) = duplicate_keys(&doc) {
            panic!("case {case}: {e}\n{}\nsensors {sensors:?}\nnet/dev {:?}", String::from_utf8_lossy(&doc), dev);
        }
    }
}
