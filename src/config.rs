//! The command line and `FLUXSTAT_*` environment variables: one table of options,
//! parsed into a `Config`. Flags win over the environment, which wins over defaults.
//!
//! Parsing never exits or prints; `main` turns a `ConfigError` into one line on
//! stderr and exit code 2.

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::access::{self, Allowlist};
use crate::glob::GlobList;
use crate::log::Level;
#[cfg(feature = "push")]
use crate::push::net::Url;
use crate::sample::disk::DiskFilter;
use crate::sample::network::NetFilter;
// This platform's defaults (Linux's, Windows' or macOS'): `sample` picks them.
use crate::sample::{DEFAULT_EXCLUDE_FS, DEFAULT_EXCLUDE_MOUNT, DEFAULT_NET_EXCLUDE};

/// The system this build is for, where `--procfs` and `--sysfs` mean nothing
/// (it has no procfs: its own readers, `sample::windows` or `sample::macos`);
/// `None` where they apply.
const NO_PROCFS: Option<&str> = if cfg!(windows) {
    Some("Windows")
} else if cfg!(target_vendor = "apple") {
    Some("macOS")
} else {
    None
};

/// The port of the original tool, kept so existing pollers need no change.
pub const DEFAULT_PORT: u16 = 8001;
/// Below this, sysinfo's CPU window is too short to measure (and it skips the update).
pub const MIN_INTERVAL: Duration = Duration::from_millis(200);
pub const MAX_INTERVAL: Duration = Duration::from_secs(3600);

/// One `--listen` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `[::]:PORT`, `:PORT` or `*:PORT` (and the default): every address, IPv4 and
    /// IPv6, on one dual-stack socket, or `0.0.0.0:PORT` where the kernel has no IPv6.
    Any(u16),
    /// `localhost:PORT`: `127.0.0.1` and, where the kernel has IPv6, `[::1]`; the
    /// name is never looked up.
    Localhost(u16),
    /// One address, or `0.0.0.0:PORT` for every IPv4 address.
    Addr(SocketAddr),
}

impl Endpoint {
    pub fn port(self) -> u16 {
        match self {
            Endpoint::Any(p) | Endpoint::Localhost(p) => p,
            Endpoint::Addr(a) => a.port(),
        }
    }

    /// `ADDR:PORT`, `[V6]:PORT`, `:PORT`, `*:PORT` or `localhost:PORT`.
    pub fn parse(s: &str) -> Option<Endpoint> {
        let (host, port) = s.rsplit_once(':')?;
        if port.is_empty() || !port.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let port: u16 = port.parse().ok()?;
        if host.is_empty() || host == "*" {
            return Some(Endpoint::Any(port));
        }
        if host.eq_ignore_ascii_case("localhost") {
            return Some(Endpoint::Localhost(port));
        }
        let addr: SocketAddr = s.parse().ok()?;
        Some(match addr {
            SocketAddr::V6(v6) if v6.ip().is_unspecified() => Endpoint::Any(port),
            a => Endpoint::Addr(a),
        })
    }

    /// The addresses this entry takes on its port: `None` is a family's wildcard.
    fn covers(self) -> Vec<(bool, Option<IpAddr>)> {
        let v4 = |ip: Ipv4Addr| (false, (!ip.is_unspecified()).then_some(IpAddr::V4(ip)));
        match self {
            Endpoint::Any(_) => vec![(false, None), (true, None)],
            Endpoint::Localhost(_) => vec![v4(Ipv4Addr::LOCALHOST), (true, Some(IpAddr::V6(Ipv6Addr::LOCALHOST)))],
            Endpoint::Addr(SocketAddr::V4(a)) => vec![v4(*a.ip())],
            Endpoint::Addr(SocketAddr::V6(a)) => vec![(true, Some(IpAddr::V6(*a.ip())))],
        }
    }

    /// Whether two entries would ask for the same address and port, which the
    /// kernel refuses with "address in use". Port 0 picks a free port each time.
    fn overlaps(self, other: Endpoint) -> bool {
        if self.port() != other.port() || self.port() == 0 {
            return false;
        }
        let theirs = other.covers();
        self.covers()
            .iter()
            .any(|&(v6, ip)| theirs.iter().any(|&(v6b, ipb)| v6 == v6b && (ip.is_none() || ipb.is_none() || ip == ipb)))
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Any(p) => write!(f, "[::]:{p}"),
            Endpoint::Localhost(p) => write!(f, "localhost:{p}"),
            Endpoint::Addr(a) => write!(f, "{a}"),
        }
    }
}

/// Where to listen: one or more entries, none overlapping another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen(pub Vec<Endpoint>);

impl Default for Listen {
    /// `[::]:8001`, dual-stack, or `0.0.0.0:8001` where the kernel has no IPv6.
    fn default() -> Listen {
        Listen(vec![Endpoint::Any(DEFAULT_PORT)])
    }
}

/// Parses the `--listen` entries; `source` names the flag or variable in errors.
fn parse_listen(list: &[String], source: &str) -> Result<Listen, ConfigError> {
    let mut parsed: Vec<(&str, Endpoint)> = Vec::new();
    for text in list {
        let text = text.trim();
        if text.is_empty() {
            return Err(ConfigError(format!(
                "{source}: an empty address; leave it unset for the default [::]:{DEFAULT_PORT}"
            )));
        }
        let endpoint = Endpoint::parse(text).ok_or_else(|| {
            let hint = if text.bytes().all(|c| c.is_ascii_digit()) {
                format!(" (for every address: :{text})")
            } else {
                String::new()
            };
            ConfigError(format!(
                "{source}: '{text}' is not ADDR:PORT (e.g. :8001, 0.0.0.0:8001, [::1]:8001, localhost:8001){hint}"
            ))
        })?;
        if let Some((earlier, other)) = parsed.iter().find(|(_, e)| e.overlaps(endpoint)) {
            return Err(ConfigError(if *other == endpoint {
                format!("{source}: {endpoint} is given twice ('{earlier}' and '{text}')")
            } else {
                format!(
                    "{source}: '{earlier}' and '{text}' overlap on port {}: {} already takes {}; give only one",
                    endpoint.port(),
                    wider(*other, endpoint),
                    taken_by(wider(*other, endpoint)),
                )
            }));
        }
        parsed.push((text, endpoint));
    }
    Ok(Listen(parsed.into_iter().map(|(_, e)| e).collect()))
}

/// Of two overlapping entries, the one that takes more addresses.
fn wider(a: Endpoint, b: Endpoint) -> Endpoint {
    let rank = |e: Endpoint| match e {
        Endpoint::Any(_) => 3,
        Endpoint::Addr(a) if a.ip().is_unspecified() => 2,
        Endpoint::Localhost(_) => 1,
        Endpoint::Addr(_) => 0,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

fn taken_by(e: Endpoint) -> &'static str {
    match e {
        Endpoint::Any(_) => "every IPv4 and IPv6 address",
        Endpoint::Addr(a) if a.ip().is_unspecified() => "every IPv4 address",
        Endpoint::Localhost(_) => "127.0.0.1 and ::1",
        Endpoint::Addr(_) => "that address",
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub listen: Listen,
    pub interval: Duration,
    pub cors_origin: Option<String>,
    pub max_connections: usize,
    pub request_timeout: Duration,
    pub idle_timeout: Duration,
    pub disks: DiskFilter,
    pub network: NetFilter,
    /// `--disk-io-exclude`: block devices left out of `disk_io`.
    pub disk_io_exclude: GlobList,
    /// `--dhcp-leases`: dnsmasq lease files; empty means the usual ones.
    pub dhcp_leases: Vec<PathBuf>,
    pub procfs: PathBuf,
    pub sysfs: PathBuf,
    pub log_level: Level,
    pub allow: Allowlist,
    /// Where the bearer token is; read by `main` (a bad file is a runtime failure).
    pub token_file: Option<PathBuf>,
    pub allow_hosts: Vec<String>,
    /// Pushing (`push`): the targets' URLs are checked here, their credential
    /// files read by `main` (a bad file is a runtime failure).
    #[cfg(feature = "push")]
    pub push: PushOptions,
    /// Whether `/` serves the device page.
    pub page: bool,
}

/// The push options as given: URLs checked, credential files not yet read.
#[cfg(feature = "push")]
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PushOptions {
    pub influx_url: Option<Url>,
    pub influx_token_file: Option<PathBuf>,
    pub mqtt_url: Option<Url>,
    pub mqtt_credentials_file: Option<PathBuf>,
    pub mqtt_discovery_prefix: String,
    pub push_interval: Option<Duration>,
    pub push_backlog: Option<usize>,
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Run(Box<Config>),
    Help,
    Version,
}

/// A usage error: printed as one line, exit code 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

struct Opt {
    name: &'static str,
    value: &'static str,
    default: &'static str,
    help: &'static str,
}

const OPTIONS: &[Opt] = &[
    Opt {
        name: "listen",
        value: "ADDR:PORT",
        default: "[::]:8001",
        help: "Address to serve on; repeat for several (env: comma-separated). [::]:PORT, :PORT and the default take IPv4 and IPv6 (IPv4 only without kernel IPv6); 0.0.0.0:PORT IPv4 only; localhost:PORT 127.0.0.1 and ::1.",
    },
    Opt { name: "interval", value: "DURATION", default: "1s", help: "How often to sample the machine (minimum 200ms)." },
    Opt {
        name: "cors-origin",
        value: "ORIGIN",
        default: "",
        help: "Let browser pages from ORIGIN (e.g. http://192.168.1.10:8123) or from anywhere (*) read the figures. Off by default; empty is off.",
    },
    Opt { name: "max-connections", value: "N", default: "128", help: "Most connections served at once." },
    Opt {
        name: "request-timeout",
        value: "DURATION",
        default: "10s",
        help: "Time a client has to send a request head (408 after it) and to take a response.",
    },
    Opt { name: "idle-timeout", value: "DURATION", default: "60s", help: "Close keep-alive connections idle this long." },
    Opt {
        name: "disk-exclude-fs",
        value: "GLOBS",
        default: DEFAULT_EXCLUDE_FS,
        help: "Filesystem types not listed as disks, comma-separated (* and ? wildcards); empty lists all.",
    },
    Opt {
        name: "disk-exclude-mount",
        value: "GLOBS",
        default: DEFAULT_EXCLUDE_MOUNT,
        help: "Mount points not listed as disks, comma-separated (* and ? wildcards); empty lists all.",
    },
    Opt {
        name: "net-include",
        value: "GLOBS",
        default: "",
        help: "Only these network interfaces, comma-separated (* and ? wildcards); empty means all. When given, the default --net-exclude is not applied.",
    },
    Opt {
        name: "net-exclude",
        value: "GLOBS",
        default: DEFAULT_NET_EXCLUDE,
        help: "Network interfaces left out, comma-separated (* and ? wildcards); empty lists all. The default applies only without --net-include.",
    },
    Opt {
        name: "disk-io-exclude",
        value: "GLOBS",
        default: crate::sample::DEFAULT_DISK_IO_EXCLUDE,
        help: "Block devices left out of disk_io, comma-separated (* and ? wildcards); empty lists all.",
    },
    Opt {
        name: "dhcp-leases",
        value: "PATH",
        default: "",
        help: "A dnsmasq lease file to count leases in; repeat for several (env: comma-separated). Default: /tmp/dhcp.leases and /var/lib/misc/dnsmasq.leases.",
    },
    Opt {
        name: "procfs",
        value: "PATH",
        default: if NO_PROCFS.is_some() { "" } else { "/proc" },
        help: if NO_PROCFS.is_some() {
            "Linux only: refused on this system, which has no procfs."
        } else {
            "Where procfs is mounted, e.g. the host's /proc inside a container."
        },
    },
    Opt {
        name: "sysfs",
        value: "PATH",
        default: if NO_PROCFS.is_some() { "" } else { "/sys" },
        help: if NO_PROCFS.is_some() {
            "Linux only: refused on this system, which has no sysfs."
        } else {
            "Where sysfs is mounted."
        },
    },
    Opt { name: "log-level", value: "LEVEL", default: "info", help: "error, warn, info or debug." },
    Opt {
        name: "allow",
        value: "LIST",
        default: "lan",
        help: "Source addresses that may connect, comma-separated: CIDRs or addresses (192.168.1.0/24, fd00::/8), lan (loopback, private, CGNAT, link-local and ULA ranges) or any. Others get 403.",
    },
    Opt {
        name: "token-file",
        value: "PATH",
        default: "",
        help: "Require 'Authorization: Bearer <token>' on /metrics, the token being the content of PATH (trimmed). /health stays open. Off by default; an empty PATH is an error.",
    },
    Opt {
        name: "allow-host",
        value: "NAMES",
        default: "",
        help: "With --token-file or --cors-origin, Host names accepted besides IP addresses, localhost and this machine's name, comma-separated; others get 421 (DNS-rebinding guard).",
    },
    Opt {
        name: "page",
        value: "on|off",
        default: "on",
        help: "Serve the device page (HTML that shows /metrics, and other hosts' on one screen) at /; off answers 404 there.",
    },
];

/// The options of pushing (the `push` build feature).
#[cfg(feature = "push")]
const PUSH_OPTIONS: &[Opt] = &[
    Opt {
        name: "influx-url",
        value: "URL",
        default: "",
        help: "Push each sample to InfluxDB as line protocol: http://HOST:8086/write?db=NAME (1.x) or http://HOST:8086/api/v2/write?org=ORG&bucket=BUCKET (2.x, 3.x). Plain HTTP; for HTTPS use a relay (README). Off by default.",
    },
    Opt {
        name: "influx-token-file",
        value: "PATH",
        default: "",
        help: "InfluxDB credentials, read from PATH: the API token for /api/v2/write, USER:PASSWORD for /write. An empty PATH is an error.",
    },
    Opt {
        name: "mqtt",
        value: "URL",
        default: "",
        help: "Publish each sample to an MQTT broker, mqtt://HOST[:1883], with Home Assistant discovery. Off by default.",
    },
    Opt {
        name: "mqtt-credentials-file",
        value: "PATH",
        default: "",
        help: "MQTT user name and password, read from PATH as USER:PASSWORD. An empty PATH is an error.",
    },
    Opt {
        name: "mqtt-discovery-prefix",
        value: "PREFIX",
        default: "homeassistant",
        help: "Topic prefix of Home Assistant's MQTT discovery.",
    },
    Opt {
        name: "push-interval",
        value: "DURATION",
        default: "",
        help: "Push one sample per DURATION instead of every sample (at least --interval).",
    },
    Opt {
        name: "push-backlog",
        value: "N",
        default: "",
        help: "Samples kept for InfluxDB while it is unreachable, oldest dropped first; default a minute's worth.",
    },
];

/// Without the `push` feature, the push options' names: known, so that giving
/// one (flag or variable) is a usage error rather than an option that does nothing.
#[cfg(not(feature = "push"))]
const PUSH_NAMES: &str =
    "influx-url influx-token-file mqtt mqtt-credentials-file mqtt-discovery-prefix push-interval push-backlog";

/// The answer to a push option in a build without pushing.
#[cfg(not(feature = "push"))]
const NO_PUSH: &str =
    "this fluxstat was built without pushing: install the fluxstat-push package or release file, or build with `cargo build --release --features push`";

/// Every option this build knows.
#[cfg(feature = "push")]
fn options() -> impl Iterator<Item = &'static Opt> {
    OPTIONS.iter().chain(PUSH_OPTIONS)
}

#[cfg(not(feature = "push"))]
fn options() -> std::slice::Iter<'static, Opt> {
    OPTIONS.iter()
}

/// The environment variable for an option: `FLUXSTAT_MAX_CONNECTIONS` for `max-connections`.
pub fn env_name(option: &str) -> String {
    format!("FLUXSTAT_{}", option.to_ascii_uppercase().replace('-', "_"))
}

/// `FLUXSTAT_*` variables that name no option: likely typos, worth a warning.
pub fn unknown_env_vars(vars: impl Iterator<Item = String>) -> Vec<String> {
    vars.filter(|k| k.starts_with("FLUXSTAT_") && !options().any(|o| env_name(o.name) == *k)).collect()
}

/// The error for `--name`, an option this build does not know.
fn unknown_option(name: &str) -> ConfigError {
    #[cfg(not(feature = "push"))]
    if PUSH_NAMES.split(' ').any(|n| n == name) {
        return ConfigError(format!("--{name}: {NO_PUSH}"));
    }
    ConfigError(format!("unknown option '--{name}' (see --help)"))
}

/// Parses the arguments (without the program name) and the environment.
pub fn parse(
    args: impl IntoIterator<Item = OsString>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Action, ConfigError> {
    let mut given: Vec<(&'static str, String)> = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let arg = arg
            .into_string()
            .map_err(|a| ConfigError(format!("argument is not valid UTF-8: {}", a.to_string_lossy())))?;
        match arg.as_str() {
            "-h" | "--help" => return Ok(Action::Help),
            "-V" | "--version" => return Ok(Action::Version),
            _ => {}
        }
        let Some(body) = arg.strip_prefix("--") else {
            return Err(ConfigError(format!("unexpected argument '{arg}' (options start with --; see --help)")));
        };
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_owned())),
            None => (body, None),
        };
        let opt = options().find(|o| o.name == name).ok_or_else(|| unknown_option(name))?;
        let value = match inline {
            Some(v) => v,
            None => args
                .next()
                .and_then(|v| v.into_string().ok())
                .ok_or_else(|| ConfigError(format!("--{name} needs a value: --{name} {}", opt.value)))?,
        };
        given.push((opt.name, value));
    }

    // The value of an option the user set: the last flag, else the environment.
    let explicit = |name: &'static str| -> Option<(String, String)> {
        if let Some((_, v)) = given.iter().rev().find(|(n, _)| *n == name) {
            return Some((v.clone(), format!("--{name}")));
        }
        let var = env_name(name);
        env(&var).map(|v| (v, var))
    };
    // The value of an option: the user's, else the default.
    let value = |name: &'static str| -> (String, String) {
        explicit(name).unwrap_or_else(|| {
            let default = options().find(|o| o.name == name).map_or("", |o| o.default);
            (default.to_owned(), format!("--{name}"))
        })
    };

    let listen = {
        let flags: Vec<String> = given.iter().filter(|(n, _)| *n == "listen").map(|(_, v)| v.clone()).collect();
        if !flags.is_empty() {
            parse_listen(&flags, "--listen")?
        } else if let Some(v) = env(&env_name("listen")) {
            let list: Vec<String> = v.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect();
            // An empty variable (an unset systemd specifier) must not widen to the default.
            let list = if list.is_empty() { vec![String::new()] } else { list };
            parse_listen(&list, &env_name("listen"))?
        } else {
            Listen::default()
        }
    };

    let (v, src) = value("interval");
    let interval = parse_duration(&v).map_err(|e| ConfigError(format!("{src}: {e}")))?;
    if interval < MIN_INTERVAL || interval > MAX_INTERVAL {
        return Err(ConfigError(format!("{src}: '{v}' is outside 200ms..1h")));
    }

    let (v, src) = value("cors-origin");
    let cors_origin =
        if v.is_empty() { None } else { Some(check_origin(&v).map_err(|e| ConfigError(format!("{src}: {e}")))?) };

    let (v, src) = value("max-connections");
    let max_connections = match v.parse::<usize>() {
        Ok(n) if (1..=1_000_000).contains(&n) => n,
        _ => return Err(ConfigError(format!("{src}: '{v}' is not a whole number from 1 to 1000000"))),
    };

    let timeout = |name: &'static str| -> Result<Duration, ConfigError> {
        let (v, src) = value(name);
        match parse_duration(&v) {
            Ok(d) if d >= Duration::from_millis(10) => Ok(d),
            Ok(_) => Err(ConfigError(format!("{src}: '{v}' is shorter than 10ms"))),
            Err(e) => Err(ConfigError(format!("{src}: {e}"))),
        }
    };
    let request_timeout = timeout("request-timeout")?;
    let idle_timeout = timeout("idle-timeout")?;

    let disks = DiskFilter {
        exclude_fs: GlobList::parse(&value("disk-exclude-fs").0),
        exclude_mount: GlobList::parse(&value("disk-exclude-mount").0),
    };

    // An interface named in the include list is listed: the default exclude list
    // (lo, veth*, docker*) applies only when no include list is given. An exclude
    // list the user gives still applies after the include list.
    let include = GlobList::parse(&value("net-include").0);
    let exclude = match explicit("net-exclude") {
        Some((v, _)) => GlobList::parse(&v),
        None if !include.is_empty() => GlobList::default(),
        None => GlobList::parse(DEFAULT_NET_EXCLUDE),
    };
    let network = NetFilter { include, exclude };
    let disk_io_exclude = GlobList::parse(&value("disk-io-exclude").0);
    let dhcp_leases = {
        let flags: Vec<String> = given.iter().filter(|(n, _)| *n == "dhcp-leases").map(|(_, v)| v.clone()).collect();
        let (list, src) = if flags.is_empty() {
            let var = env_name("dhcp-leases");
            let list: Vec<String> =
                env(&var).map(|v| v.split(',').map(|p| p.trim().to_owned()).collect()).unwrap_or_default();
            (list, var)
        } else {
            (flags, "--dhcp-leases".to_owned())
        };
        if list.iter().any(String::is_empty) {
            return Err(ConfigError(format!("{src}: a path is empty; name the lease file")));
        }
        list.into_iter().map(PathBuf::from).collect()
    };
    let dir = |name: &'static str| -> Result<PathBuf, ConfigError> {
        let (v, src) = value(name);
        let path = PathBuf::from(&v);
        if let Some(system) = NO_PROCFS {
            // The option is refused, not ignored; the (empty) default is never read.
            let set = given.iter().any(|(n, _)| *n == name) || env(&env_name(name)).is_some();
            return match set {
                true => Err(ConfigError(format!("{src}: there is no {name} on {system}"))),
                false => Ok(path),
            };
        }
        if path.is_dir() {
            Ok(path)
        } else {
            Err(ConfigError(format!("{src}: '{v}' is not a directory")))
        }
    };
    let procfs = dir("procfs")?;
    let sysfs = dir("sysfs")?;

    let (v, src) = value("log-level");
    let log_level =
        Level::parse(&v).ok_or_else(|| ConfigError(format!("{src}: '{v}' is not one of error, warn, info, debug")))?;

    let (v, src) = value("allow");
    let allow = Allowlist::parse(&v).map_err(|e| ConfigError(format!("{src}: {e}")))?;
    // Fail closed: a token file that is set but empty (e.g. an unset systemd
    // specifier) is a usage error, never "no token".
    let token_file = match explicit("token-file") {
        None => None,
        Some((v, src)) if v.trim().is_empty() => {
            return Err(ConfigError(format!(
                "{src}: the path is empty; name the token file, or unset {src} to serve without a token"
            )))
        }
        Some((v, _)) => Some(PathBuf::from(v)),
    };
    let (v, src) = value("allow-host");
    let allow_hosts = access::parse_host_list(&v).map_err(|e| ConfigError(format!("{src}: {e}")))?;
    #[cfg(feature = "push")]
    let push = push_options(&explicit, &value, interval)?;
    #[cfg(not(feature = "push"))]
    if let Some(var) = PUSH_NAMES.split(' ').map(env_name).find(|v| env(v).is_some()) {
        return Err(ConfigError(format!("{var}: {NO_PUSH}")));
    }
    let (v, src) = value("page");
    let page = match v.trim() {
        "on" => true,
        "off" => false,
        _ => return Err(ConfigError(format!("{src}: '{v}' is not on or off"))),
    };

    Ok(Action::Run(Box::new(Config {
        listen,
        interval,
        cors_origin,
        max_connections,
        request_timeout,
        idle_timeout,
        disks,
        network,
        disk_io_exclude,
        dhcp_leases,
        procfs,
        sysfs,
        log_level,
        allow,
        token_file,
        allow_hosts,
        #[cfg(feature = "push")]
        push,
        page,
    })))
}

/// The push options: URLs checked, credential files named (an empty path is an
/// error, as for --token-file), and none without the pusher it belongs to.
#[cfg(feature = "push")]
fn push_options(
    explicit: &dyn Fn(&'static str) -> Option<(String, String)>,
    value: &dyn Fn(&'static str) -> (String, String),
    interval: Duration,
) -> Result<PushOptions, ConfigError> {
    let file = |name: &'static str| -> Result<Option<PathBuf>, ConfigError> {
        match explicit(name) {
            None => Ok(None),
            Some((v, src)) if v.trim().is_empty() => {
                Err(ConfigError(format!("{src}: the path is empty; name the credentials file, or unset {src}")))
            }
            Some((v, _)) => Ok(Some(PathBuf::from(v))),
        }
    };
    let url = |name: &'static str, scheme: &str, port: u16| -> Result<Option<Url>, ConfigError> {
        match explicit(name) {
            None => Ok(None),
            Some((v, src)) if v.trim().is_empty() => {
                Err(ConfigError(format!("{src}: the URL is empty; unset {src} to push nowhere")))
            }
            Some((v, src)) => {
                if v.starts_with(&format!("{scheme}s://")) {
                    return Err(ConfigError(format!(
                        "{src}: '{v}': TLS is not built in; push plain {scheme}:// to a relay on the LAN (README, \"Send it somewhere\")"
                    )));
                }
                Url::parse(v.trim(), scheme, port).map(Some).map_err(|e| ConfigError(format!("{src}: {e}")))
            }
        }
    };
    let influx_url = url("influx-url", "http", 8086)?;
    if let Some(u) = &influx_url {
        let src = explicit("influx-url").map(|(_, s)| s).unwrap_or_default();
        crate::push::influx::Target::new(u.clone(), None).map_err(|e| ConfigError(format!("{src}: {e}")))?;
    }
    let influx_token_file = file("influx-token-file")?;
    let mqtt_url = url("mqtt", "mqtt", 1883)?;
    let mqtt_credentials_file = file("mqtt-credentials-file")?;
    for (set, needs, name) in [
        (influx_token_file.is_some(), influx_url.is_some(), "influx-token-file needs --influx-url"),
        (mqtt_credentials_file.is_some(), mqtt_url.is_some(), "mqtt-credentials-file needs --mqtt"),
    ] {
        if set && !needs {
            return Err(ConfigError(format!("--{name}")));
        }
    }
    let (prefix, src) = value("mqtt-discovery-prefix");
    if prefix.is_empty() || prefix.contains(['+', '#', '\0']) || prefix.starts_with('/') || prefix.ends_with('/') {
        return Err(ConfigError(format!("{src}: '{prefix}' is not a topic prefix (e.g. homeassistant)")));
    }
    let push_interval = match explicit("push-interval") {
        None => None,
        Some((v, src)) => match parse_duration(&v) {
            Ok(d) if d >= interval && d <= MAX_INTERVAL => Some(d),
            Ok(_) => return Err(ConfigError(format!("{src}: '{v}' is outside --interval..1h"))),
            Err(e) => return Err(ConfigError(format!("{src}: {e}"))),
        },
    };
    let push_backlog = match explicit("push-backlog") {
        None => None,
        Some((v, src)) => match v.parse::<usize>() {
            Ok(n) if (1..=100_000).contains(&n) => Some(n),
            _ => return Err(ConfigError(format!("{src}: '{v}' is not a whole number from 1 to 100000"))),
        },
    };
    Ok(PushOptions {
        influx_url,
        influx_token_file,
        mqtt_url,
        mqtt_credentials_file,
        mqtt_discovery_prefix: prefix,
        push_interval,
        push_backlog,
    })
}

/// `500ms`, `2s`, `1m`, `1h`: a whole number and a unit.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits.parse().map_err(|_| format!("'{s}' is not a duration (e.g. 500ms, 2s, 1m)"))?;
    let ms = match unit {
        "ms" => Some(n),
        "s" => n.checked_mul(1_000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        "" => return Err(format!("'{s}' needs a unit: ms, s, m or h (e.g. {s}s)")),
        _ => return Err(format!("'{s}' has an unknown unit '{unit}' (use ms, s, m or h)")),
    };
    ms.map(Duration::from_millis).ok_or_else(|| format!("'{s}' is too long"))
}

/// `*`, or one origin `http[s]://host[:port]`, normalised to what a browser sends
/// in `Origin` (RFC 6454): scheme and host in lower case, no default port, no path.
/// A trailing `/` (as copied from an address bar) is dropped; any other path,
/// query, fragment or user part is refused, and so is anything that is not a
/// plain host name or IP literal, since the value is copied into a header.
fn check_origin(v: &str) -> Result<String, String> {
    if v == "*" {
        return Ok(v.to_owned());
    }
    let bad = |why: &str| format!("'{v}' is not * or an origin like http://192.168.1.10:8123 ({why})");
    let (scheme, rest) = v.split_once("://").ok_or_else(|| bad("no http:// or https://"))?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return Err(bad("the scheme must be http or https")),
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains(['/', '?', '#']) {
        return Err(bad("an origin has no path"));
    }
    if authority.contains('@') {
        return Err(bad("an origin has no user name"));
    }
    let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
        let (literal, after) = inner.split_once(']').ok_or_else(|| bad("unclosed ["))?;
        literal.parse::<Ipv6Addr>().map_err(|_| bad("not an IPv6 address in []"))?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(|| bad("junk after ]"))?),
        };
        (format!("[{}]", literal.to_ascii_lowercase()), port)
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        if host.is_empty() || !host.bytes().all(|c| c.is_ascii_alphanumeric() || b".-_".contains(&c)) {
            return Err(bad("not a host name or address"));
        }
        (host.to_ascii_lowercase(), port)
    };
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.bytes().all(|c| c.is_ascii_digit()) => (n != default_port).then_some(n),
            _ => return Err(bad("the port must be a number from 1 to 65535")),
        },
    };
    Ok(match port {
        Some(p) => format!("{scheme}://{host}:{p}"),
        None => format!("{scheme}://{host}"),
    })
}

/// The `--help` text, with every option, its variable and its default.
pub fn help() -> String {
    let mut s = format!(
        "fluxstat {} — serves this machine's uptime, CPU, memory and disk figures as JSON at /metrics\n\n\
         Usage: fluxstat [OPTIONS]\n\nOptions (each also from the environment variable shown; flags win):\n",
        env!("CARGO_PKG_VERSION")
    );
    for o in options() {
        s.push_str(&format!("  --{} {}\n      {}\n      [env: {}]", o.name, o.value, o.help, env_name(o.name)));
        if o.default.is_empty() {
            s.push_str(" [default: off]\n");
        } else {
            s.push_str(&format!(" [default: {}]\n", o.default));
        }
    }
    s.push_str("  -h, --help     Print this help\n  -V, --version  Print the version\n\n");
    s.push_str("Durations: a whole number with ms, s, m or h (500ms, 2s, 1m).\n");
    s.push_str("Endpoints: GET /metrics (the JSON document), GET /health (200 while samples are fresh, else 503),\n");
    s.push_str("GET / (the device page, unless --page off).\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str], env: &[(&str, &str)]) -> Result<Config, String> {
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let lookup = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        match parse(args.iter().map(OsString::from), lookup) {
            Ok(Action::Run(c)) => Ok(*c),
            Ok(other) => Err(format!("{other:?}")),
            Err(e) => Err(e.0),
        }
    }

    #[test]
    fn defaults() {
        let c = run(&[], &[]).expect("defaults parse");
        assert_eq!(c.listen, Listen::default());
        assert_eq!(c.listen, Listen(vec![Endpoint::Any(8001)]));
        assert_eq!(c.interval, Duration::from_secs(1));
        assert_eq!(c.max_connections, 128);
        assert_eq!(c.request_timeout, Duration::from_secs(10));
        assert_eq!(c.idle_timeout, Duration::from_secs(60));
        assert_eq!(c.cors_origin, None);
        assert_eq!(c.log_level, Level::Info);
        assert_eq!(c.disks, DiskFilter::default());
        assert_eq!(c.network, NetFilter::default());
        assert_eq!((c.procfs.to_str(), c.sysfs.to_str()), (Some("/proc"), Some("/sys")));
        assert_eq!(c.allow, Allowlist::default());
        assert_eq!((c.token_file, c.allow_hosts), (None, vec![]));
    }

    #[test]
    fn page_option() {
        assert!(run(&[], &[]).expect("defaults").page);
        assert!(!run(&["--page", "off"], &[]).expect("parses").page);
        assert!(!run(&[], &[("FLUXSTAT_PAGE", "off")]).expect("parses").page);
        assert!(run(&["--page=on"], &[("FLUXSTAT_PAGE", "off")]).expect("the flag wins").page);
        assert_eq!(run(&["--page", "no"], &[]), Err("--page: 'no' is not on or off".into()));
        assert_eq!(run(&[], &[("FLUXSTAT_PAGE", "")]), Err("FLUXSTAT_PAGE: '' is not on or off".into()));
    }

    #[test]
    fn access_options() {
        let c = run(
            &["--allow", "10.0.0.0/8, ::1", "--token-file", "/etc/fluxstat/token", "--allow-host=pi.example"],
            &[("FLUXSTAT_ALLOW", "any")],
        )
        .expect("parses");
        assert_eq!(c.allow, Allowlist::parse("10.0.0.0/8,::1").expect("list"));
        assert_eq!(c.token_file, Some(PathBuf::from("/etc/fluxstat/token")));
        assert_eq!(c.allow_hosts, ["pi.example"]);
        let e = run(&[], &[("FLUXSTAT_ALLOW", "any"), ("FLUXSTAT_TOKEN_FILE", "/run/t")]).expect("parses");
        assert_eq!((e.allow, e.token_file), (Allowlist::Any, Some(PathBuf::from("/run/t"))));
    }

    #[test]
    fn flags_env_and_precedence() {
        let c = run(
            &["--listen", "127.0.0.1:0", "--listen=[::1]:9000", "--interval=500ms", "--cors-origin", "*"],
            &[("FLUXSTAT_INTERVAL", "5s"), ("FLUXSTAT_MAX_CONNECTIONS", "7"), ("FLUXSTAT_LISTEN", "0.0.0.0:1")],
        )
        .expect("parses");
        let want = vec![
            Endpoint::Addr("127.0.0.1:0".parse().expect("addr")),
            Endpoint::Addr("[::1]:9000".parse().expect("addr")),
        ];
        assert_eq!(c.listen, Listen(want));
        assert_eq!(c.interval, Duration::from_millis(500), "flag wins over env");
        assert_eq!(c.max_connections, 7, "env wins over default");
        assert_eq!(c.cors_origin.as_deref(), Some("*"));

        let e = run(&[], &[("FLUXSTAT_LISTEN", "127.0.0.1:1, 127.0.0.2:2"), ("FLUXSTAT_DISK_EXCLUDE_FS", "")])
            .expect("parses");
        assert_eq!(e.listen.0.len(), 2);
        assert!(e.disks.exclude_fs.is_empty());
        assert_eq!(run(&["--interval", "2s", "--interval", "3s"], &[]).map(|c| c.interval), Ok(Duration::from_secs(3)));
    }

    #[test]
    fn usage_errors() {
        type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
        let table: &[Case<'_>] = &[
            (&["--bogus"], &[], "unknown option '--bogus'"),
            (&["serve"], &[], "unexpected argument 'serve'"),
            (&["--interval"], &[], "--interval needs a value"),
            (&["--interval", "100ms"], &[], "outside 200ms..1h"),
            (&["--interval", "5"], &[], "needs a unit"),
            (&["--interval", "5x"], &[], "unknown unit 'x'"),
            (&[], &[("FLUXSTAT_INTERVAL", "fast")], "FLUXSTAT_INTERVAL: 'fast' is not a duration"),
            (&["--listen", "8001"], &[], "'8001' is not ADDR:PORT"),
            (&["--listen", "8001"], &[], "(for every address: :8001)"),
            (&["--listen", "::1:8001"], &[], "'::1:8001' is not ADDR:PORT"),
            (&["--listen", "host.example:8001"], &[], "is not ADDR:PORT"),
            (&["--listen", "127.0.0.1:65536"], &[], "is not ADDR:PORT"),
            (&["--listen", ""], &[], "--listen: an empty address"),
            (&[], &[("FLUXSTAT_LISTEN", "")], "FLUXSTAT_LISTEN: an empty address"),
            (&[], &[("FLUXSTAT_LISTEN", " , ")], "FLUXSTAT_LISTEN: an empty address"),
            (&["--listen", "127.0.0.1:8001", "--listen", "127.0.0.1:8001"], &[], "127.0.0.1:8001 is given twice"),
            (&["--listen", ":9000", "--listen", "[::]:9000"], &[], "[::]:9000 is given twice"),
            (&["--listen", "0.0.0.0:9000", "--listen", "[::]:9000"], &[], "'0.0.0.0:9000' and '[::]:9000' overlap on port 9000: [::]:9000 already takes every IPv4 and IPv6 address"),
            (&["--listen", "127.0.0.1:9000", "--listen", "0.0.0.0:9000"], &[], "0.0.0.0:9000 already takes every IPv4 address"),
            (&["--listen", "localhost:9000", "--listen", "[::1]:9000"], &[], "localhost:9000 already takes 127.0.0.1 and ::1"),
            (&[], &[("FLUXSTAT_LISTEN", "[::1]:1,[::]:1")], "FLUXSTAT_LISTEN: '[::1]:1' and '[::]:1' overlap"),
            (&["--token-file", ""], &[], "--token-file: the path is empty"),
            (&[], &[("FLUXSTAT_TOKEN_FILE", "")], "FLUXSTAT_TOKEN_FILE: the path is empty"),
            (&[], &[("FLUXSTAT_TOKEN_FILE", " ")], "FLUXSTAT_TOKEN_FILE: the path is empty"),
            (&["--cors-origin", "http://a:8123/x"], &[], "an origin has no path"),
            (&["--cors-origin", "http://a?b"], &[], "an origin has no path"),
            (&["--cors-origin", "http://u@a"], &[], "an origin has no user name"),
            (&["--cors-origin", "ftp://a"], &[], "the scheme must be http or https"),
            (&["--cors-origin", "a:8123"], &[], "no http://"),
            (&["--cors-origin", "http://a:0"], &[], "the port must be"),
            (&["--cors-origin", "http://a:99999"], &[], "the port must be"),
            (&["--cors-origin", "http://[::1"], &[], "unclosed ["),
            (&["--cors-origin", "http://[zz]"], &[], "not an IPv6 address"),
            (&["--cors-origin", "http://"], &[], "not a host name"),
            (&["--cors-origin", "null"], &[], "is not * or an origin"),
            (&["--max-connections", "0"], &[], "'0' is not a whole number"),
            (&["--max-connections", "-3"], &[], "is not a whole number"),
            (&["--cors-origin", "http://a\r\nSet-Cookie: x"], &[], "is not * or an origin"),
            (&["--cors-origin", "http://a/path"], &[], "is not * or an origin"),
            (&["--request-timeout", "1ms"], &[], "shorter than 10ms"),
            (&["--log-level", "loud"], &[], "'loud' is not one of"),
            (&["--procfs", "/nonexistent/proc"], &[], "--procfs: '/nonexistent/proc' is not a directory"),
            (&[], &[("FLUXSTAT_SYSFS", "/nonexistent")], "FLUXSTAT_SYSFS: '/nonexistent' is not a directory"),
            (&["--allow", "10.0.0.0/33"], &[], "--allow: '10.0.0.0/33' is not an address or CIDR"),
            (&["--allow", "lan,fe80::/129"], &[], "'fe80::/129' is not an address or CIDR"),
            (&["--allow", "::ffff:10.0.0.0/129"], &[], "is not an address or CIDR"),
            (&["--allow", ""], &[], "--allow: the list is empty"),
            (&[], &[("FLUXSTAT_ALLOW", "192.168.1/24")], "FLUXSTAT_ALLOW: '192.168.1/24' is not"),
            (&["--allow-host", "pi:8001"], &[], "--allow-host: 'pi:8001' is not a host name"),
            (&["--token-file"], &[], "--token-file needs a value"),
        ];
        for (args, env, want) in table {
            match run(args, env) {
                Err(e) => assert!(e.contains(want), "{args:?}: got {e:?}, want {want:?}"),
                Ok(c) => panic!("{args:?} parsed: {c:?}"),
            }
        }
    }

    #[test]
    fn listen_forms() {
        let table: &[(&str, Endpoint)] = &[
            (":8001", Endpoint::Any(8001)),
            ("*:8001", Endpoint::Any(8001)),
            ("[::]:9000", Endpoint::Any(9000)),
            ("[0::0]:9000", Endpoint::Any(9000)),
            ("localhost:8001", Endpoint::Localhost(8001)),
            ("LOCALHOST:8001", Endpoint::Localhost(8001)),
            ("0.0.0.0:8001", Endpoint::Addr("0.0.0.0:8001".parse().expect("addr"))),
            ("[::1]:0", Endpoint::Addr("[::1]:0".parse().expect("addr"))),
            ("192.168.1.2:80", Endpoint::Addr("192.168.1.2:80".parse().expect("addr"))),
        ];
        for (text, want) in table {
            assert_eq!(run(&["--listen", text], &[]).map(|c| c.listen), Ok(Listen(vec![*want])), "{text}");
        }
        // Disjoint entries, and port 0 (a fresh port each time) given twice, are fine.
        for pair in [
            ["127.0.0.1:8001", "[::1]:8001"],
            ["0.0.0.0:8001", "[::1]:8001"],
            ["127.0.0.1:8001", "127.0.0.2:8001"],
            [":8001", ":8002"],
            ["127.0.0.1:0", "127.0.0.1:0"],
            ["localhost:0", "[::]:0"],
        ] {
            assert!(run(&["--listen", pair[0], "--listen", pair[1]], &[]).is_ok(), "{pair:?}");
        }
    }

    #[test]
    fn empty_security_options_fail_closed_or_mean_the_closed_state() {
        // Empty CORS is off, and an empty extra Host list adds no names: both the
        // closed state. An empty --allow, --listen or --token-file is an error.
        let c = run(&["--cors-origin", "", "--allow-host", ""], &[("FLUXSTAT_CORS_ORIGIN", "*")]).expect("parses");
        assert_eq!((c.cors_origin, c.allow_hosts), (None, vec![]));
        let e = run(&[], &[("FLUXSTAT_CORS_ORIGIN", ""), ("FLUXSTAT_ALLOW_HOST", "")]).expect("parses");
        assert_eq!((e.cors_origin, e.allow_hosts), (None, vec![]));
        for (args, env) in [
            (&["--token-file", ""][..], &[][..]),
            (&[], &[("FLUXSTAT_TOKEN_FILE", "")]),
            (&[], &[("FLUXSTAT_ALLOW", "")]),
            (&["--allow", " , "], &[]),
            (&[], &[("FLUXSTAT_LISTEN", "")]),
        ] {
            assert!(run(args, env).is_err(), "{args:?} {env:?}");
        }
    }

    #[test]
    fn cors_origin_is_normalised_as_browsers_send_it() {
        let table: &[(&str, &str)] = &[
            ("*", "*"),
            ("http://192.168.1.10:8123", "http://192.168.1.10:8123"),
            ("http://192.168.1.10:8123/", "http://192.168.1.10:8123"),
            ("HTTP://Grafana.LAN:3000/", "http://grafana.lan:3000"),
            ("http://ha.local:80", "http://ha.local"),
            ("https://ha.local:443/", "https://ha.local"),
            ("https://ha.local:80", "https://ha.local:80"),
            ("http://[FE80::1]:8123/", "http://[fe80::1]:8123"),
            ("http://[::1]", "http://[::1]"),
            ("http://pi:08123", "http://pi:8123"),
        ];
        for (given, want) in table {
            assert_eq!(
                run(&["--cors-origin", given], &[]).map(|c| c.cors_origin),
                Ok(Some((*want).to_owned())),
                "{given}"
            );
        }
    }

    #[test]
    fn dhcp_lease_files_and_the_disk_io_filter() {
        let c = run(&[], &[]).expect("defaults");
        assert!(c.dhcp_leases.is_empty(), "empty: the usual files");
        assert!(
            c.disk_io_exclude.matches("zram0")
                && c.disk_io_exclude.matches("loop7")
                && !c.disk_io_exclude.matches("mmcblk0")
        );
        let c = run(&["--dhcp-leases", "/a", "--dhcp-leases=/b"], &[("FLUXSTAT_DHCP_LEASES", "/c")]).expect("flags");
        assert_eq!(c.dhcp_leases, [PathBuf::from("/a"), PathBuf::from("/b")], "flags win over the variable");
        let c = run(&[], &[("FLUXSTAT_DHCP_LEASES", "/c, /d")]).expect("variable");
        assert_eq!(c.dhcp_leases, [PathBuf::from("/c"), PathBuf::from("/d")]);
        let e = run(&["--dhcp-leases", ""], &[]).expect_err("empty path");
        assert!(e.contains("--dhcp-leases") && e.contains("empty"), "{e}");
        assert!(run(&[], &[("FLUXSTAT_DHCP_LEASES", "")]).is_err(), "an empty variable is not the defaults");
        let c = run(&["--disk-io-exclude", ""], &[]).expect("empty list");
        assert!(!c.disk_io_exclude.matches("loop0"));
    }

    #[test]
    fn an_included_interface_is_listed_despite_the_default_exclude() {
        let keeps =
            |args: &[&str], env: &[(&str, &str)], name: &str| run(args, env).expect("parses").network.keeps(name);
        assert!(!keeps(&[], &[], "lo"), "lo is left out by default");
        assert!(keeps(&["--net-include", "lo"], &[], "lo"));
        assert!(keeps(&[], &[("FLUXSTAT_NET_INCLUDE", "lo,eth*")], "lo"));
        assert!(keeps(&["--net-include", "veth*,eth0"], &[], "veth1a2b"));
        assert!(!keeps(&["--net-include", "lo"], &[], "eth0"), "the include list still limits");
        // An exclude list the user gives applies after the include list.
        assert!(!keeps(&["--net-include", "eth*", "--net-exclude", "eth1"], &[], "eth1"));
        assert!(!keeps(&["--net-include", "lo"], &[("FLUXSTAT_NET_EXCLUDE", "lo")], "lo"));
        assert!(!keeps(&["--net-include", ""], &[], "lo"), "an empty include list is no include list");
    }

    #[test]
    fn duration_table() {
        let table: &[(&str, Option<u64>)] = &[
            ("500ms", Some(500)),
            ("2s", Some(2000)),
            ("1m", Some(60_000)),
            ("1h", Some(3_600_000)),
            (" 3s ", Some(3000)),
            ("0s", Some(0)),
            ("1.5s", None),
            ("s", None),
            ("", None),
            ("99999999999999999999s", None),
            ("18446744073709551615h", None),
        ];
        for &(s, want) in table {
            let got = parse_duration(s).ok().map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
            assert_eq!(got, want, "{s:?}");
        }
    }

    #[test]
    fn help_and_version() {
        let p = |a: &[&str]| parse(a.iter().map(OsString::from), |_| None);
        assert_eq!(p(&["--help"]), Ok(Action::Help));
        assert_eq!(p(&["--interval", "1s", "-V"]), Ok(Action::Version));
        let h = help();
        for o in options() {
            assert!(h.contains(&format!("--{}", o.name)) && h.contains(&env_name(o.name)), "{}", o.name);
        }
        assert!(h.contains("[default: 1s]"));
    }

    #[test]
    fn unknown_env_is_reported() {
        let vars = ["FLUXSTAT_INTERVAL", "FLUXSTAT_INTERVALL", "PATH"].map(String::from);
        assert_eq!(unknown_env_vars(vars.into_iter()), ["FLUXSTAT_INTERVALL"]);
    }
}
