//! The command line and `FLUXSTAT_*` environment variables: one table of options,
//! parsed into a `Config`. Flags win over the environment, which wins over defaults.
//!
//! Parsing never exits or prints; `main` turns a `ConfigError` into one line on
//! stderr and exit code 2.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::access::{self, Allowlist};
use crate::glob::GlobList;
use crate::log::Level;
use crate::sample::disk::{DiskFilter, DEFAULT_EXCLUDE_FS, DEFAULT_EXCLUDE_MOUNT};
use crate::sample::network::{NetFilter, DEFAULT_EXCLUDE as DEFAULT_NET_EXCLUDE};

/// The port of the original tool, kept so existing pollers need no change.
pub const DEFAULT_PORT: u16 = 8001;
/// Below this, sysinfo's CPU window is too short to measure (and it skips the update).
pub const MIN_INTERVAL: Duration = Duration::from_millis(200);
pub const MAX_INTERVAL: Duration = Duration::from_secs(3600);

/// Where to listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// `[::]:8001` dual-stack, or `0.0.0.0:8001` where the kernel has no IPv6.
    Default,
    /// The addresses given with `--listen`; IPv6 ones are IPv6-only.
    Addrs(Vec<SocketAddr>),
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
    pub procfs: PathBuf,
    pub sysfs: PathBuf,
    pub log_level: Level,
    pub allow: Allowlist,
    /// Where the bearer token is; read by `main` (a bad file is a runtime failure).
    pub token_file: Option<PathBuf>,
    pub allow_hosts: Vec<String>,
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
        help: "Address to serve on; repeat for several (env: comma-separated). The default is dual-stack and falls back to 0.0.0.0:8001 without IPv6; an explicit IPv6 address is IPv6-only.",
    },
    Opt { name: "interval", value: "DURATION", default: "1s", help: "How often to sample the machine (minimum 200ms)." },
    Opt {
        name: "cors-origin",
        value: "ORIGIN",
        default: "",
        help: "Let browser pages from ORIGIN (e.g. http://192.168.1.10:8123) or from anywhere (*) read the figures. Off by default.",
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
        help: "Only these network interfaces, comma-separated (* and ? wildcards); empty means all.",
    },
    Opt {
        name: "net-exclude",
        value: "GLOBS",
        default: DEFAULT_NET_EXCLUDE,
        help: "Network interfaces left out, comma-separated (* and ? wildcards); empty lists all.",
    },
    Opt {
        name: "procfs",
        value: "PATH",
        default: "/proc",
        help: "Where procfs is mounted, e.g. the host's /proc inside a container.",
    },
    Opt { name: "sysfs", value: "PATH", default: "/sys", help: "Where sysfs is mounted." },
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
        help: "Require 'Authorization: Bearer <token>' on /metrics, the token being the content of PATH (trimmed). /health stays open. Off by default.",
    },
    Opt {
        name: "allow-host",
        value: "NAMES",
        default: "",
        help: "With --token-file or --cors-origin, Host names accepted besides IP addresses, localhost and this machine's name, comma-separated; others get 421 (DNS-rebinding guard).",
    },
];

/// The environment variable for an option: `FLUXSTAT_MAX_CONNECTIONS` for `max-connections`.
pub fn env_name(option: &str) -> String {
    format!("FLUXSTAT_{}", option.to_ascii_uppercase().replace('-', "_"))
}

/// `FLUXSTAT_*` variables that name no option: likely typos, worth a warning.
pub fn unknown_env_vars(vars: impl Iterator<Item = String>) -> Vec<String> {
    vars.filter(|k| k.starts_with("FLUXSTAT_") && !OPTIONS.iter().any(|o| env_name(o.name) == *k)).collect()
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
        let opt = OPTIONS
            .iter()
            .find(|o| o.name == name)
            .ok_or_else(|| ConfigError(format!("unknown option '--{name}' (see --help)")))?;
        let value = match inline {
            Some(v) => v,
            None => args
                .next()
                .and_then(|v| v.into_string().ok())
                .ok_or_else(|| ConfigError(format!("--{name} needs a value: --{name} {}", opt.value)))?,
        };
        given.push((opt.name, value));
    }

    // The value of an option: the last flag, else the environment, else the default.
    let value = |name: &'static str| -> (String, String) {
        if let Some((_, v)) = given.iter().rev().find(|(n, _)| *n == name) {
            return (v.clone(), format!("--{name}"));
        }
        let var = env_name(name);
        if let Some(v) = env(&var) {
            return (v, var);
        }
        let default = OPTIONS.iter().find(|o| o.name == name).map_or("", |o| o.default);
        (default.to_owned(), format!("--{name}"))
    };

    let listen = {
        let flags: Vec<&String> = given.iter().filter(|(n, _)| *n == "listen").map(|(_, v)| v).collect();
        let (list, source): (Vec<String>, String) = if !flags.is_empty() {
            (flags.into_iter().cloned().collect(), "--listen".into())
        } else if let Some(v) = env(&env_name("listen")) {
            (v.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect(), env_name("listen"))
        } else {
            (Vec::new(), String::new())
        };
        if list.is_empty() {
            Listen::Default
        } else {
            let addrs = list
                .iter()
                .map(|a| {
                    a.parse::<SocketAddr>().map_err(|_| {
                        ConfigError(format!("{source}: '{a}' is not ADDR:PORT (e.g. 0.0.0.0:8001 or [::1]:8001)"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Listen::Addrs(addrs)
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

    let network = NetFilter {
        include: GlobList::parse(&value("net-include").0),
        exclude: GlobList::parse(&value("net-exclude").0),
    };
    let dir = |name: &'static str| -> Result<PathBuf, ConfigError> {
        let (v, src) = value(name);
        let path = PathBuf::from(&v);
        if cfg!(windows) {
            // Windows has neither: the option is refused, the unused default kept.
            let set = given.iter().any(|(n, _)| *n == name) || env(&env_name(name)).is_some();
            return match set {
                true => Err(ConfigError(format!("{src}: there is no {name} on Windows"))),
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
    let (v, _) = value("token-file");
    let token_file = (!v.is_empty()).then(|| PathBuf::from(v));
    let (v, src) = value("allow-host");
    let allow_hosts = access::parse_host_list(&v).map_err(|e| ConfigError(format!("{src}: {e}")))?;

    Ok(Action::Run(Box::new(Config {
        listen,
        interval,
        cors_origin,
        max_connections,
        request_timeout,
        idle_timeout,
        disks,
        network,
        procfs,
        sysfs,
        log_level,
        allow,
        token_file,
        allow_hosts,
    })))
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

/// `*`, or one origin `http[s]://host[:port]` with no path: it is copied into a
/// header, so anything else (spaces, line breaks) is refused.
fn check_origin(v: &str) -> Result<String, String> {
    if v == "*" {
        return Ok(v.to_owned());
    }
    let rest = v.strip_prefix("http://").or_else(|| v.strip_prefix("https://"));
    let ok = rest.is_some_and(|host| {
        !host.is_empty() && host.bytes().all(|c| c.is_ascii_alphanumeric() || b".-:[]_".contains(&c))
    });
    if ok {
        Ok(v.to_owned())
    } else {
        Err(format!("'{v}' is not * or an origin like http://192.168.1.10:8123"))
    }
}

/// The `--help` text, with every option, its variable and its default.
pub fn help() -> String {
    let mut s = format!(
        "fluxstat {} — serves this machine's uptime, CPU, memory and disk figures as JSON at /metrics\n\n\
         Usage: fluxstat [OPTIONS]\n\nOptions (each also from the environment variable shown; flags win):\n",
        env!("CARGO_PKG_VERSION")
    );
    for o in OPTIONS {
        s.push_str(&format!("  --{} {}\n      {}\n      [env: {}]", o.name, o.value, o.help, env_name(o.name)));
        if o.default.is_empty() {
            s.push_str(" [default: off]\n");
        } else {
            s.push_str(&format!(" [default: {}]\n", o.default));
        }
    }
    s.push_str("  -h, --help     Print this help\n  -V, --version  Print the version\n\n");
    s.push_str("Durations: a whole number with ms, s, m or h (500ms, 2s, 1m).\n");
    s.push_str("Endpoints: GET /metrics (the JSON document), GET /health (200 while samples are fresh, else 503).\n");
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
        assert_eq!(c.listen, Listen::Default);
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
        let want: Vec<SocketAddr> = vec!["127.0.0.1:0".parse().expect("addr"), "[::1]:9000".parse().expect("addr")];
        assert_eq!(c.listen, Listen::Addrs(want));
        assert_eq!(c.interval, Duration::from_millis(500), "flag wins over env");
        assert_eq!(c.max_connections, 7, "env wins over default");
        assert_eq!(c.cors_origin.as_deref(), Some("*"));

        let e = run(&[], &[("FLUXSTAT_LISTEN", "127.0.0.1:1, 127.0.0.2:2"), ("FLUXSTAT_DISK_EXCLUDE_FS", "")])
            .expect("parses");
        assert!(matches!(e.listen, Listen::Addrs(ref a) if a.len() == 2));
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
            (&["--listen", "localhost:8001"], &[], "is not ADDR:PORT"),
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
        for o in OPTIONS {
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
