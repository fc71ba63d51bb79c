//! The `fluxstat` binary: parse the configuration, take the first sample, open
//! the listeners, serve until SIGTERM or SIGINT (which also ends start-up at once,
//! before the first sample is in). Maps every failure to an exit
//! code: 2 for usage errors, 1 for runtime failures, each with one line on stderr.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use async_signal::{Signal, Signals};
#[cfg(not(windows))]
use smol::stream::StreamExt;

use fluxstat::access::{self, Access, Allowlist, Hosts};
use fluxstat::config::{self, Action, Config};
#[cfg(feature = "push")]
use fluxstat::push;
use fluxstat::sample::{self, Roots, SamplerConfig};
use fluxstat::server::{self, Settings, Stats};
use fluxstat::{debug, error, info, log, socket, warn};

/// Responses in flight get this long after a signal; with the rest of the
/// shutdown this keeps the exit well within the promised 2 s.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(1500);

/// The signals that stop the server; on Windows async-signal knows only Ctrl-C.
#[cfg(not(windows))]
const SIGNALS: [Signal; 2] = [Signal::Term, Signal::Int];
#[cfg(windows)]
const SIGNALS: [Signal; 1] = [Signal::Int];

fn main() -> ExitCode {
    match config::parse(std::env::args_os().skip(1), |k| std::env::var(k).ok()) {
        Ok(Action::Help) => {
            print!("{}", config::help());
            ExitCode::SUCCESS
        }
        Ok(Action::Version) => {
            println!("fluxstat {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Ok(Action::Run(config)) => match run(*config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                error!("{message}");
                ExitCode::from(1)
            }
        },
        Err(e) => {
            eprintln!("fluxstat: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(config: Config) -> Result<(), String> {
    log::set_level(config.log_level);
    for var in config::unknown_env_vars(std::env::vars().map(|(k, _)| k)) {
        warn!("ignoring {var}: no such option (see --help)");
    }
    let access = access(&config)?;
    // Registered first, so a signal during start-up is not lost.
    let mut signals = Signals::new(SIGNALS).map_err(|e| format!("cannot handle signals: {e}"))?;
    #[cfg(windows)]
    let console = fluxstat::windows::console_events().map_err(|e| format!("cannot handle console events: {e}"))?;

    #[cfg(feature = "push")]
    let push_config = push_config(&config)?;
    #[cfg(feature = "push")]
    let push_counters = Arc::new(push::Counters::for_config(&push_config));
    let stats = Arc::new(Stats::default());
    let sampler = SamplerConfig {
        interval: config.interval,
        disks: config.disks.clone(),
        network: config.network.clone(),
        disk_io_exclude: config.disk_io_exclude.clone(),
        dhcp_leases: config.dhcp_leases.clone(),
        roots: Roots { procfs: config.procfs.clone(), sysfs: config.sysfs.clone(), ..Roots::default() },
        stats: Arc::clone(&stats),
        #[cfg(feature = "push")]
        push: Arc::clone(&push_counters),
    };
    // The first sample is taken on the sampler thread while this one waits for
    // it or for a signal, so that a signal ends start-up at once whatever a reader does.
    let starting = sample::spawn(sampler).map_err(|e| e.to_string())?;
    debug!("taking the first sample");
    #[cfg(not(windows))]
    let first = smol::block_on(smol::future::or(async { Ok(starting.first().await) }, async {
        Err(signals.next().await.and_then(Result::ok))
    }));
    // Ctrl-C or a console event (see below).
    #[cfg(windows)]
    let first = smol::block_on(smol::future::or(async { Ok(starting.first().await) }, async {
        Err(fluxstat::windows::stop_requested(&mut signals, &console).await)
    }));
    let latest = match first {
        Ok(first) => first.map_err(|e| e.to_string())?,
        Err(signal) => {
            info!("received {} during start-up, stopping", signal_name(signal));
            return Ok(());
        }
    };
    let listeners = socket::bind_all(&config.listen)?;
    for l in &listeners {
        info!("listening on {}", socket::describe(l));
    }

    // After the sampler and the listeners opened theirs: the cap fits what is left.
    let max_connections = server::fds::cap(config.max_connections, listeners.len()).map_err(|e| e.to_string())?;
    let settings = Settings {
        max_connections,
        request_timeout: config.request_timeout,
        idle_timeout: config.idle_timeout,
        interval: config.interval,
        cors_origin: config.cors_origin,
        shutdown_grace: SHUTDOWN_GRACE,
        access,
        page: config.page,
    };
    #[cfg(not(windows))]
    let signalled = async move {
        if let Some(Ok(signal)) = signals.next().await {
            info!("received {}, shutting down", signal_name(Some(signal)));
        }
    };
    // Ctrl-C, or a console event: Ctrl-Break, window closed, logoff, shutdown.
    #[cfg(windows)]
    let signalled = async move {
        let name = fluxstat::windows::stop_requested(&mut signals, &console).await;
        info!("received {name}, shutting down");
    };
    // The pushers run on threads of their own (`push::start`), fed by the
    // sampler; they are never joined: the process exits without waiting for
    // them, which drops the MQTT connection without DISCONNECT, so the broker
    // publishes the will.
    #[cfg(feature = "push")]
    if push_config.is_on() {
        push::start(push_config, &latest, &push_counters, config.interval)?;
    }
    let shutdown = signalled;
    server::run(listeners, latest, settings, stats, shutdown).map_err(|e| format!("server failed: {e}"))?;
    info!("stopped");
    #[cfg(windows)]
    fluxstat::windows::stopped();
    Ok(())
}

/// The pushers' configuration: reads the credential files (a failure is a
/// runtime error, exit 1).
#[cfg(feature = "push")]
fn push_config(config: &Config) -> Result<push::PushConfig, String> {
    let o = &config.push;
    let influx = match &o.influx_url {
        None => None,
        Some(url) => {
            let secret = o
                .influx_token_file
                .as_deref()
                .map(|p| push::net::read_secret(p, "InfluxDB credentials"))
                .transpose()?;
            let target = push::influx::Target::new(url.clone(), secret.as_deref())?;
            info!("pushing to InfluxDB at {}{}", url.authority(), url.path_and_query.split('?').next().unwrap_or(""));
            Some(target)
        }
    };
    let mqtt = match &o.mqtt_url {
        None => None,
        Some(url) => {
            let credentials = match o.mqtt_credentials_file.as_deref() {
                None => None,
                Some(p) => {
                    let text = push::net::read_secret(p, "MQTT credentials")?;
                    let (user, password) = text
                        .split_once(':')
                        .ok_or_else(|| format!("{}: the MQTT credentials are USER:PASSWORD", p.display()))?;
                    Some((user.to_owned(), password.to_owned()))
                }
            };
            info!("publishing to MQTT at {}", url.authority());
            Some(push::mqtt::Target { url: url.clone(), credentials, prefix: o.mqtt_discovery_prefix.clone() })
        }
    };
    if influx.is_none() && mqtt.is_none() && (o.push_interval.is_some() || o.push_backlog.is_some()) {
        warn!("--push-interval and --push-backlog have no effect without --influx-url or --mqtt");
    }
    Ok(push::PushConfig { influx, mqtt, every: o.push_interval, backlog: o.push_backlog })
}

#[cfg(not(windows))]
fn signal_name(signal: Option<Signal>) -> &'static str {
    match signal {
        Some(Signal::Int) => "SIGINT",
        Some(Signal::Term) => "SIGTERM",
        _ => "a signal",
    }
}

/// Windows: the stop request is named already (Ctrl-C, Ctrl-Break, console close…).
#[cfg(windows)]
fn signal_name(name: &'static str) -> &'static str {
    name
}

/// The access policy: reads the token file (a failure is a runtime error, exit 1)
/// and turns the Host check on when a token or CORS makes it matter.
fn access(config: &Config) -> Result<Access, String> {
    let token = config.token_file.as_deref().map(access::read_token).transpose()?;
    let guarded = token.is_some() || config.cors_origin.is_some();
    if !guarded && !config.allow_hosts.is_empty() {
        warn!("--allow-host has no effect without --token-file or --cors-origin");
    }
    let hosts = guarded.then(|| Hosts::new(&config.allow_hosts, access::hostname().as_deref()));
    if config.allow == Allowlist::Any {
        info!("--allow any: connections are accepted from every address");
    }
    if token.is_some() {
        info!("/metrics requires a bearer token");
    }
    Ok(Access { allow: config.allow.clone(), token, hosts })
}
