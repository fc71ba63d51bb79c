//! The integration tests: one binary, real sockets on 127.0.0.1, raw bytes out,
//! real parsing of what comes back.

#[path = "../../build/page.rs"]
mod build_page;
mod cli;
mod connections;
mod edges;
// Fixture /proc and /sys trees for the Linux readers (cross/windows/skipped-tests).
#[cfg(procfs)]
mod fixtures;
#[path = "../../fuzz/checks.rs"]
mod fuzz_checks;
mod fuzz_corpus;
mod http;
mod metrics;
mod page;
mod process;
mod properties;
// Against Linux servers: the pull recipes (collectd, Home Assistant's templates;
// every build) and the pushers (InfluxDB, MQTT; with the `push` feature).
#[cfg(target_os = "linux")]
mod pull;
#[cfg(all(feature = "push", target_os = "linux"))]
mod push;
#[cfg(all(feature = "push", target_os = "linux"))]
mod push_v2;
mod robustness;
// Sensor readers under a deadline, FIFOs, SIGTERM, procfs misses: Linux-only
// (cross/windows/skipped-tests).
#[cfg(procfs)]
mod sampling;
mod security;
#[cfg(target_os = "linux")]
mod servers;
mod soak;
mod support;
#[cfg(windows)]
mod windows;
