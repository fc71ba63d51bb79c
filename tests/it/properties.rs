//! Issue 6, property tests over real sockets against the in-process server:
//! any request stream, valid or not, cut into any pieces, gets the same answer
//! bytes (modulo `Date`) as when sent whole; and pipelined requests are answered
//! in order, each exactly as it is answered alone.
//!
//! Inputs come from a seeded xorshift generator, so every run tries the same
//! cases and a failure names the seed and case that reproduce it.

use std::time::Duration;

use fluxstat::http::{self, Parse};

use crate::fuzz_checks::{talk, talk_paced, without_dates};
use crate::support::{settings, TestServer};

/// xorshift64*: small, fast, and the same sequence on every machine.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// One request head: with `hostile`, any of the shapes clients and attackers
/// send, well-formed or not; without, one that fluxstat answers and keeps the
/// connection open for (unless it asks to close).
pub fn request(rng: &mut Rng, hostile: bool) -> Vec<u8> {
    let pick = |rng: &mut Rng, benign: &[&'static str], bad: &[&'static str]| -> &'static str {
        let list = if hostile && rng.chance(25) { bad } else { benign };
        list[rng.below(list.len())]
    };
    let method = pick(rng, &["GET", "GET", "GET", "HEAD", "OPTIONS", "DELETE"], &["POST", "get", "G\x01T", ""]);
    let target = pick(
        rng,
        &["/metrics", "/metrics", "/health", "/", "/metrics?x=1&y", "*", "http://pi.lan:8001/metrics", "/metrics/"],
        &["/h%00ealth", "/a b", ""],
    );
    let version = pick(rng, &["HTTP/1.1", "HTTP/1.1", "HTTP/1.1", "HTTP/1.0"], &["HTTP/2.0", "HTTP/1.2", "http/1.1"]);
    let eol: &[u8] = if hostile && rng.chance(10) { b"\n" } else { b"\r\n" };
    let sep = if hostile && rng.chance(3) { "  " } else { " " };
    let mut head = format!("{method}{sep}{target} {version}").into_bytes();
    head.extend_from_slice(eol);
    let hosts = if hostile { *rng.pick(&[1, 1, 1, 1, 1, 0, 2]) } else { 1 };
    for _ in 0..hosts {
        head.extend_from_slice(b"Host: pi.lan:8001");
        head.extend_from_slice(eol);
    }
    if version == "HTTP/1.0" && !hostile {
        head.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    for _ in 0..rng.below(5) {
        let kinds = if hostile { 15 } else { 6 };
        let line: Vec<u8> = match rng.below(kinds) {
            0 => b"If-None-Match: *".to_vec(),
            1 => b"If-None-Match: \"nope\"".to_vec(),
            2 => b"Content-Length: 0".to_vec(),
            3 => b"Authorization: Bearer abc".to_vec(),
            4 => {
                let mut junk = b"X-Junk: ".to_vec();
                junk.extend((0..rng.below(40)).map(|_| b' ' + (rng.next() % 95) as u8));
                junk
            }
            5 if rng.chance(20) => b"Connection: close".to_vec(),
            5 => b"Connection: keep-alive".to_vec(),
            6 => b"Content-Length: 5".to_vec(),
            7 => b"Content-Length: 1x".to_vec(),
            8 => b"Transfer-Encoding: chunked".to_vec(),
            9 => b"Bad Header: x".to_vec(),
            10 => b"X-Folded: a\r\n b".to_vec(),
            11 => [b"X-Long: ".to_vec(), vec![b'a'; 1 + rng.below(9000)]].concat(),
            12 => (0..40).map(|i| format!("X-{i}: y")).collect::<Vec<_>>().join("\r\n").into_bytes(),
            13 => b"Authorization: Bearer a\r\nAuthorization: Bearer b".to_vec(),
            _ => b"Connection: close".to_vec(),
        };
        head.extend_from_slice(&line);
        head.extend_from_slice(eol);
    }
    head.extend_from_slice(eol);
    if hostile && rng.chance(8) {
        let i = rng.below(head.len());
        head[i] = rng.next() as u8;
    }
    if hostile && rng.chance(5) {
        head.truncate(rng.below(head.len()));
    }
    head
}

/// Cuts `bytes` into 1 to 64 pieces at random points.
fn cut<'a>(rng: &mut Rng, bytes: &'a [u8]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = (0..rng.below(64)).map(|_| rng.below(bytes.len() + 1)).collect();
    points.extend([0, bytes.len()]);
    points.sort_unstable();
    points.dedup();
    points.windows(2).map(|w| &bytes[w[0]..w[1]]).collect()
}

/// A fixed snapshot never goes stale (`TestServer::fixed`), so /health cannot change
/// between the whole and the cut-up sending of a request.
fn server() -> TestServer {
    TestServer::fixed(settings())
}

#[test]
fn any_request_cut_into_any_pieces_gets_the_same_answer() {
    const SEED: u64 = 6;
    let server = server();
    let mut rng = Rng::new(SEED);
    let mut answered = 0;
    for case in 0..300 {
        let mut stream = request(&mut rng, true);
        if rng.chance(30) {
            let hostile = rng.chance(50);
            stream.extend(request(&mut rng, hostile));
        }
        let whole = without_dates(&talk(server.addr, &[&stream]));
        let pieces = cut(&mut rng, &stream);
        let split = without_dates(&talk_paced(server.addr, &pieces, Duration::from_micros(100)));
        assert!(
            whole == split,
            "seed {SEED} case {case}: {:?} in {} pieces\n whole: {:?}\n split: {:?}",
            String::from_utf8_lossy(&stream),
            pieces.len(),
            String::from_utf8_lossy(&whole),
            String::from_utf8_lossy(&split)
        );
        answered += usize::from(!whole.is_empty());
    }
    println!("fragmentation: {answered} of 300 request streams answered");
    assert!(answered > 250, "most cases get an answer: {answered}");
}

/// Whether `req` is exactly one head as the server will frame it: complete, or
/// refused (which closes the connection), never running into the next request.
fn one_head(req: &[u8]) -> bool {
    match http::parse(req) {
        Parse::Complete(_, len) => len == req.len(),
        Parse::Invalid(_) => true,
        Parse::Partial => false,
    }
}

#[test]
fn pipelined_requests_are_answered_in_order_as_if_alone() {
    const SEED: u64 = 66;
    let server = server();
    let mut rng = Rng::new(SEED);
    let mut several = 0;
    for case in 0..100 {
        let mut batch = Vec::new();
        let n = 2 + rng.below(7);
        while batch.len() < n {
            let hostile = rng.chance(10);
            let r = request(&mut rng, hostile);
            if one_head(&r) {
                batch.push(r);
            }
        }
        // Alone, each request gets its answer and then the connection ends (by
        // our close or by the server's); pipelined, the answers follow in order
        // up to the first that closes.
        let mut expected = Vec::new();
        for r in &batch {
            let alone = without_dates(&talk(server.addr, &[r]));
            expected.extend_from_slice(&alone);
            let head_end = alone.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(alone.len());
            if alone[..head_end].windows(19).any(|w| w == b"\r\nConnection: close") {
                break;
            }
        }
        let stream = batch.concat();
        let pieces = cut(&mut rng, &stream);
        let got = without_dates(&talk(server.addr, &pieces));
        assert!(
            got == expected,
            "seed {SEED} case {case}: {:?}\n pipelined: {:?}\n expected: {:?}",
            String::from_utf8_lossy(&stream),
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&expected)
        );
        several += usize::from(got.windows(9).filter(|w| w == b"HTTP/1.1 ").count() >= 2);
    }
    println!("pipelining: {several} of 100 batches got two or more answers");
    assert!(several > 60, "too few batches were answered past their first request: {several}");
}
