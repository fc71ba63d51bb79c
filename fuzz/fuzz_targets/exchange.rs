//! The connection state machine: arbitrary bytes, cut into arbitrary pieces,
//! sent to a real in-process server over loopback (see `checks::exchange`).
#![no_main]

#[allow(dead_code)]
#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::exchange(data));
