//! A tiny stderr logger with a runtime level, to avoid pulling in a logging stack.
//!
//! One line per event: `2026-11-26T00:31:15Z WARN message`. No colour, ever, so
//! journald, syslog and files get plain text.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
}

impl Level {
    pub fn parse(s: &str) -> Option<Level> {
        match s.to_ascii_lowercase().as_str() {
            "error" => Some(Level::Error),
            "warn" | "warning" => Some(Level::Warn),
            "info" => Some(Level::Info),
            "debug" => Some(Level::Debug),
            _ => None,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Level::Error => "ERROR",
            Level::Warn => "WARN",
            Level::Info => "INFO",
            Level::Debug => "DEBUG",
        }
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label().to_ascii_lowercase())
    }
}

static LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);
/// Whether lines go through `eprint!`, which a test harness captures (see `capture_for_tests`).
static TO_TEST_HARNESS: AtomicBool = AtomicBool::new(cfg!(test));

/// For tests that run the server or the sampler in-process: log lines go through
/// `eprint!`, which the test harness captures per test (threads spawned by a test
/// inherit its capture) and shows only when that test fails, so `cargo test` does
/// not print warnings that look like failures. The binary never calls this:
/// `eprint!` panics when stderr is a broken pipe.
pub fn capture_for_tests() {
    TO_TEST_HARNESS.store(true, Ordering::Relaxed);
}

pub fn set_level(level: Level) {
    LEVEL.store(level as u8, Ordering::Relaxed);
}

pub fn enabled(level: Level) -> bool {
    level as u8 <= LEVEL.load(Ordering::Relaxed)
}

/// Writes one line; use the `error!`, `warn!`, `info!` and `debug!` macros.
pub fn write(level: Level, args: std::fmt::Arguments<'_>) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let stamp = crate::wire::rfc3339_micros(now.saturating_mul(1_000_000));
    // "2026-11-26T00:31:15" + "Z": the micros and offset add nothing to a log line.
    let line = format!("{}Z {} {}\n", stamp.get(..19).unwrap_or(&stamp), level.label(), args);
    if TO_TEST_HARNESS.load(Ordering::Relaxed) {
        eprint!("{line}");
        return;
    }
    // A closed stderr must not take the server down: ignore write errors.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

#[macro_export]
macro_rules! log_at {
    ($level:expr, $($arg:tt)*) => {
        if $crate::log::enabled($level) {
            $crate::log::write($level, format_args!($($arg)*));
        }
    };
}
#[macro_export]
macro_rules! error { ($($arg:tt)*) => { $crate::log_at!($crate::log::Level::Error, $($arg)*) }; }
#[macro_export]
macro_rules! warn { ($($arg:tt)*) => { $crate::log_at!($crate::log::Level::Warn, $($arg)*) }; }
#[macro_export]
macro_rules! info { ($($arg:tt)*) => { $crate::log_at!($crate::log::Level::Info, $($arg)*) }; }
#[macro_export]
macro_rules! debug { ($($arg:tt)*) => { $crate::log_at!($crate::log::Level::Debug, $($arg)*) }; }

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_parse_table() {
        let table: &[(&str, Option<Level>)] = &[
            ("error", Some(Level::Error)),
            ("WARN", Some(Level::Warn)),
            ("warning", Some(Level::Warn)),
            ("Info", Some(Level::Info)),
            ("debug", Some(Level::Debug)),
            ("trace", None),
            ("", None),
        ];
        for &(s, want) in table {
            assert_eq!(Level::parse(s), want, "{s}");
        }
        assert!(Level::Error < Level::Debug);
    }
}
