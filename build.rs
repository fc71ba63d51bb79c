//! Decides the platform once, for every `cfg` in the crate: `procfs` is set where
//! the machine is read from `/proc` and `/sys` (Linux, Android and the other
//! systems with a Linux-style procfs), not on Windows or Apple's systems, which
//! have their own readers (`src/sample/windows/`, `src/sample/macos.rs`).

fn main() {
    println!("cargo::rustc-check-cfg=cfg(procfs)");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let vendor = std::env::var("CARGO_CFG_TARGET_VENDOR").unwrap_or_default();
    if os != "windows" && vendor != "apple" {
        println!("cargo::rustc-cfg=procfs");
    }
    println!("cargo::rerun-if-changed=build.rs");
}
