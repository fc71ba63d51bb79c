//! fluxstat: samples the machine on a timer and serves the latest sample as JSON
//! at `GET /metrics`. See ARCHITECTURE.md for the data flow and its invariants.
//!
//! The library exists so that the binary stays a thin `main` and the integration
//! tests can run the real server in-process on an ephemeral port.

pub mod log;

pub mod access;
pub mod config;
pub mod glob;
pub mod http;
pub mod page;
pub mod published;
#[cfg(feature = "push")]
pub mod push;
pub mod sample;
pub mod server;
pub mod snapshot;
pub mod socket;
#[cfg(windows)]
pub mod windows;
pub mod wire;
