//! The smallest Rust program that stays alive: bench/run.sh builds it with the
//! release profile's settings and reports its idle RSS next to fluxstat's, so the
//! part of fluxstat's RSS that any glibc-linked Rust program has can be told from
//! fluxstat's own.
fn main() {
    std::thread::sleep(std::time::Duration::from_secs(3600));
}
