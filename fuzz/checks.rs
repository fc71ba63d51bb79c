//! The properties the fuzz targets check, in one file shared by the cargo-fuzz
//! targets (`fuzz/fuzz_targets/*.rs`) and the stable-toolchain test that runs
//! them over the seed corpus (`tests/it/fuzz_corpus.rs`).
//!
//! `parse`: `http::parse` never panics; a complete head parses the same alone and
//! with anything after it, and none of its proper prefixes is complete; a partial
//! head is under the size limit and all its prefixes are partial too.
//!
//! `exchange`: the connection state machine, over a real socket to a server in
//! this process: the bytes of the answers do not depend on how the request bytes
//! were cut into pieces (modulo the `Date` header), and the server never hangs.
//! A panic in the server thread aborts the fuzzer like one in the target.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use fluxstat::access::{Access, Hosts, Token};
use fluxstat::http::{self, Parse, MAX_HEAD};
use fluxstat::published::{Latest, Published};
use fluxstat::server::{self, Settings, Stats};
use fluxstat::snapshot::Snapshot;

/// How long one exchange may take before it counts as a hang.
const PATIENCE: Duration = Duration::from_secs(10);

pub fn parse(data: &[u8]) {
    let whole = http::parse(data);
    match &whole {
        Parse::Complete(_, len) => {
            let len = *len;
            assert!(len > 0 && len <= data.len() && len <= MAX_HEAD, "length {len} of {}", data.len());
            assert_eq!(http::parse(&data[..len]), whole, "the head alone parses differently");
            for k in prefixes(len) {
                let p = http::parse(&data[..k]);
                assert_eq!(p, Parse::Partial, "prefix of {k} bytes of a complete {len}-byte head");
            }
        }
        Parse::Partial => {
            assert!(data.len() < MAX_HEAD, "{} bytes still partial", data.len());
            for k in prefixes(data.len()) {
                assert_eq!(http::parse(&data[..k]), Parse::Partial, "prefix of {k} bytes of a partial head");
            }
        }
        Parse::Invalid(status) => assert!(status.code() >= 400, "{status:?}"),
    }
}

/// Every proper prefix length of a short input; a spread of them for a long one.
fn prefixes(len: usize) -> Vec<usize> {
    if len <= 256 {
        return (0..len).collect();
    }
    let mut ks: Vec<usize> = (0..64).map(|i| i * len / 64).collect();
    ks.extend([len - 1, len - 2, len - 3, len - 4]);
    ks
}

/// The first byte seeds how the rest is cut into pieces, and its top bit picks a
/// server that requires the token `abc` and checks `Host` (allowing `pi.lan`).
pub fn exchange(data: &[u8]) {
    let Some((&seed, stream)) = data.split_first() else { return };
    let addr = if seed & 0x80 == 0 { server() } else { guarded_server() };
    let whole = without_dates(&talk(addr, &[stream]));
    let pieces = cut(stream, seed);
    let split = without_dates(&talk(addr, &pieces));
    assert!(
        whole == split,
        "the answers depend on how the request was cut:\n whole: {:?}\n split: {:?}",
        String::from_utf8_lossy(&whole),
        String::from_utf8_lossy(&split)
    );
    assert!(whole.is_empty() || whole.starts_with(b"HTTP/1.1 "), "{:?}", String::from_utf8_lossy(&whole));
}

/// Cuts `bytes` into pieces of 1 to `1 + seed % 32` bytes, chosen by xorshift.
pub fn cut(bytes: &[u8], seed: u8) -> Vec<&[u8]> {
    let mut x = 0x9E37_79B9_7F4A_7C15_u64 ^ u64::from(seed);
    let most = 1 + usize::from(seed % 32);
    let mut pieces = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let n = 1 + (x as usize) % most;
        let (piece, tail) = rest.split_at(n.min(rest.len()));
        pieces.push(piece);
        rest = tail;
    }
    pieces
}

/// Sends `pieces` one write each, closes the sending side and returns every byte
/// the server sent until it closed.
pub fn talk(addr: SocketAddr, pieces: &[&[u8]]) -> Vec<u8> {
    talk_paced(addr, pieces, Duration::ZERO)
}

/// `talk`, pausing between pieces so that the server reads them one by one.
pub fn talk_paced(addr: SocketAddr, pieces: &[&[u8]], pause: Duration) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).expect("connect to the server");
    stream.set_nodelay(true).expect("nodelay");
    stream.set_read_timeout(Some(PATIENCE)).expect("read timeout");
    stream.set_write_timeout(Some(PATIENCE)).expect("write timeout");
    // Inputs are small: the kernel's socket buffers hold them and the answers, so
    // one thread can send everything before reading.
    for piece in pieces {
        match stream.write_all(piece) {
            Ok(()) => {}
            // The server closed first (after an error): nothing more to send.
            Err(e) if matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset) => break,
            Err(e) => panic!("the server stopped reading ({e})"),
        }
        if !pause.is_zero() {
            std::thread::sleep(pause);
        }
    }
    let _ = stream.shutdown(Shutdown::Write);
    let started = Instant::now();
    let mut got = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            // A close with unread input resets; what came before it was read.
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return got,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("the server hung ({e}) after {:?}", started.elapsed()),
        }
    }
}

/// The answers with every `Date` value blanked: the only part that may differ.
pub fn without_dates(bytes: &[u8]) -> Vec<u8> {
    const DATE: &[u8] = b"\r\nDate: ";
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(DATE) && bytes.len() >= i + DATE.len() + 29 {
            out.extend_from_slice(DATE);
            out.extend_from_slice(&[b'-'; 29]);
            i += DATE.len() + 29;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// A server in this process on 127.0.0.1, started once, serving an empty sample
/// that stays fresh.
pub fn server() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| start(Access::default()))
}

/// Like `server`, with a bearer token and the Host check on.
pub fn guarded_server() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        let token = Token::new(b"abc").expect("a valid token");
        start(Access { token: Some(token), hosts: Some(Hosts::new(&["pi.lan".into()], None)), ..Access::default() })
    })
}

fn start(access: Access) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    let snapshot = Snapshot::default();
    let latest = Arc::new(Latest::new(Published::new(&snapshot, 1, Instant::now())));
    let settings = Settings {
        max_connections: 1024,
        request_timeout: PATIENCE,
        idle_timeout: PATIENCE,
        interval: Duration::from_secs(3600),
        cors_origin: None,
        shutdown_grace: Duration::from_millis(100),
        access,
        page: true,
    };
    std::thread::spawn(move || {
        let stats = Arc::new(Stats::default());
        server::run(vec![listener], latest, settings, stats, std::future::pending())
    });
    addr
}
