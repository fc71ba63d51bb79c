//! Issue 6, keeps serving: slow clients, a descriptor limit, SIGTERM under
//! load, and the per-connection memory bound, over real sockets on 127.0.0.1.
//! Each test prints the figure it measures.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cli::{fluxstat, Running};
use crate::process::{clock_ticks_per_second, cpu_ticks, ensure_nofile, fd_count, rss_kib, steady_fd_count};
use crate::support::{as_str, at, emulated, heavy, settings, wait_for, Client, TestServer, PATIENCE};

const GET_METRICS: &[u8] = b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n";

/// Connect, `GET /metrics`, read the whole answer: the latency a poller sees.
fn timed_get(addr: SocketAddr) -> Duration {
    let started = Instant::now();
    let r = Client::connect(addr).get("/metrics");
    let took = started.elapsed();
    assert_eq!(r.status, 200);
    took
}

#[test]
fn slow_clients_do_not_delay_a_fresh_one_and_are_closed_at_the_request_timeout() {
    let _heavy = heavy();
    // 500 as the issue asks; fewer under an emulator, where each costs ~40× more.
    let slow_count: usize = if emulated() { 100 } else { 500 };
    ensure_nofile(4 * slow_count as u64);
    let mut s = settings();
    s.max_connections = 600;
    s.request_timeout = Duration::from_secs(3);
    let server = TestServer::fixed(s);
    let mut slow: Vec<TcpStream> = (0..slow_count)
        .map(|_| {
            let c = TcpStream::connect(server.addr).expect("connect");
            c.set_nodelay(true).expect("nodelay");
            c
        })
        .collect();
    wait_for("the slow connections", || server.stats.open.load(Ordering::Relaxed) == slow_count);

    // One byte per second on each, while a fresh client polls ten times a second.
    let mut latencies = Vec::new();
    let started = Instant::now();
    for (second, byte) in GET_METRICS.iter().take(3).enumerate() {
        for c in &mut slow {
            let _ = c.write_all(std::slice::from_ref(byte));
        }
        let next = started + Duration::from_secs(second as u64 + 1);
        while Instant::now() + Duration::from_millis(100) < next {
            latencies.push(timed_get(server.addr));
            std::thread::sleep(Duration::from_millis(100)); // pacing: ten polls a second
        }
    }
    latencies.sort();
    let max = latencies[latencies.len() - 1];
    let median = latencies[latencies.len() / 2];
    println!(
        "slow clients: {} fresh /metrics amid {slow_count} one-byte-a-second clients: median {median:?}, max {max:?}",
        latencies.len()
    );
    // A few ms natively; an emulator stretches every step some 40×.
    let bound = if emulated() { Duration::from_secs(2) } else { Duration::from_millis(100) };
    assert!(max < bound, "a fresh client waited {max:?}");

    // 3 s after they connected, every slow client gets 408 and is closed.
    for c in &mut slow {
        c.set_read_timeout(Some(PATIENCE)).expect("timeout");
        let mut answer = Vec::new();
        c.read_to_end(&mut answer).expect("the server closes");
        assert!(answer.starts_with(b"HTTP/1.1 408 Request Timeout\r\n"), "{:?}", String::from_utf8_lossy(&answer));
    }
    let closed_after = started.elapsed();
    assert!(closed_after < Duration::from_secs(6), "slow clients closed after {closed_after:?}");
    wait_for("no connection left", || server.stats.open.load(Ordering::Relaxed) == 0);
}

/// fluxstat under `ulimit -n`, started through bash so the limit applies to it only.
fn fluxstat_with_nofile(limit: u32, args: &[&str]) -> Running {
    let bin = env!("CARGO_BIN_EXE_fluxstat");
    // $RUNNER is empty natively, the emulator under cross/test-under-qemu.sh.
    let script = format!("ulimit -n {limit} && exec $RUNNER \"$BIN\" \"$@\"");
    let mut bash = std::process::Command::new("bash");
    bash.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        // Not FLUXSTAT_*: fluxstat warns about variables it does not know.
        .env("BIN", bin)
        .env("RUNNER", crate::cli::runner().join(" "))
        .envs(std::env::vars().filter(|(k, _)| k.starts_with("QEMU_")));
    bash.args(["-c", &script, "fluxstat"]).args(args);
    Running::start(&mut bash)
}

/// The families of a `/metrics` document (`system.*`) that are not `null`.
fn families_present(doc: &miniserde::json::Value) -> Vec<String> {
    match at(doc, &["system"]) {
        miniserde::json::Value::Object(o) => {
            o.iter().filter(|(_, v)| !matches!(v, miniserde::json::Value::Null)).map(|(k, _)| k.clone()).collect()
        }
        other => panic!("system is not an object: {other:?}"),
    }
}

#[test]
fn connections_fit_the_descriptor_limit_and_the_sampler_keeps_every_family() {
    let _heavy = heavy();
    // 64 descriptors, soft and hard, with the default --max-connections (128).
    let mut run = fluxstat_with_nofile(64, &["--listen", "127.0.0.1:0", "--interval", "200ms"]);
    let addr = run.listening_addr();
    let pid = run.child.id();
    let baseline = Client::connect(addr).get("/metrics");
    assert_eq!(baseline.status, 200);
    let families = families_present(&baseline.json());

    // More idle clients than descriptors: half answered once, half silent.
    let hogs: Vec<Client> = (0..100)
        .map(|i| {
            let mut c = Client::connect(addr);
            if i % 2 == 0 {
                // Answered unless a later hog displaced it already.
                let _ = c.stream.write_all(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n");
            }
            c
        })
        .collect();
    let fds = fd_count(pid);
    assert!(fds < 64, "the descriptor table is full: {fds}");

    // Fresh clients are served (displacing idle ones), and the sampler, with
    // its descriptors kept free, still reads every family.
    let mut updated = Vec::new();
    for _ in 0..10 {
        let r = Client::connect(addr).get("/metrics");
        assert_eq!(r.status, 200, "a fresh client amid {} idle ones", hogs.len());
        let doc = r.json();
        assert_eq!(families_present(&doc), families, "families present under connection load");
        updated.push(as_str(at(&doc, &["updated_at"])).to_owned());
        std::thread::sleep(Duration::from_millis(100)); // pacing: two polls per sample
    }
    updated.dedup();
    assert!(updated.len() >= 3, "the sampler stalled: {updated:?}");
    let cap_line = run.line_with("serving at most");
    let cap: usize = cap_line
        .split("serving at most ")
        .nth(1)
        .and_then(|r| r.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("a number in {cap_line:?}"));

    // Not spinning on the connections it cannot take yet.
    let (t0, w0) = (cpu_ticks(pid), Instant::now());
    std::thread::sleep(Duration::from_secs(1)); // the measurement window
    let (t1, wall) = (cpu_ticks(pid), w0.elapsed());
    let share = (t1 - t0) as f64 / clock_ticks_per_second() as f64 / wall.as_secs_f64();
    println!(
        "descriptors: nofile 64 → cap {cap}; {fds} descriptors open with 100 idle clients; \
         families {families:?} all present; {:.1} % of a core",
        share * 100.0
    );
    assert!(share < 0.2, "fluxstat spins: {:.1} % of a core", share * 100.0);
    drop(hogs);
    assert_eq!(Client::connect(addr).get("/metrics").status, 200);
    run.signal("TERM");
    assert_eq!(run.wait_exit().0, 0);
}

#[test]
fn a_descriptor_limit_with_no_room_for_connections_is_a_clear_error() {
    let mut run = fluxstat_with_nofile(40, &["--listen", "127.0.0.1:0"]);
    let (code, _) = run.wait_exit();
    assert_eq!(code, 1);
    let lines = run.all_lines();
    assert!(
        lines.iter().any(|l| l.contains("ERROR the open-file limit (40) leaves no room for connections")),
        "{lines:?}"
    );
}

/// What a client saw of one response.
enum Seen {
    Complete,
    /// The connection ended between responses: a clean close.
    Closed,
}

/// Reads one response, checking that the body is exactly `Content-Length` long.
/// A connection that ends inside a response is an error.
fn read_one(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<Seen, String> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut r = httparse::Response::new(&mut headers);
        if let Ok(httparse::Status::Complete(head)) = r.parse(buf) {
            let len = r
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.parse::<usize>().ok())
                .ok_or("no Content-Length")?;
            let status = r.code;
            while buf.len() < head + len {
                if fill(stream, buf)? == 0 {
                    return Err(format!("cut body: {} of {len} bytes", buf.len() - head));
                }
            }
            let body = &buf[head..head + len];
            if status == Some(200) && !(body.starts_with(b"{\"system\":") && body.ends_with(b"}")) {
                return Err("a body that is not the document".into());
            }
            buf.drain(..head + len);
            return Ok(Seen::Complete);
        }
        if fill(stream, buf)? == 0 {
            return if buf.is_empty() { Ok(Seen::Closed) } else { Err(format!("cut head: {} bytes", buf.len())) };
        }
    }
}

fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<usize, String> {
    let mut chunk = [0u8; 8192];
    match stream.read(&mut chunk) {
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Ok(n)
        }
        // A reset before any byte of a response cut nothing; within one it did.
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset && buf.is_empty() => Ok(0),
        Err(e) => Err(format!("read: {e}")),
    }
}

#[test]
fn sigterm_under_keep_alive_load_cuts_no_response_and_exits_0_within_2s() {
    let _heavy = heavy();
    let mut run = Running::start(fluxstat().args(["--listen", "127.0.0.1:0"]));
    let addr = run.listening_addr();
    let complete = Arc::new(AtomicUsize::new(0));
    let ready = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (complete, ready) = (Arc::clone(&complete), Arc::clone(&ready));
            std::thread::spawn(move || -> Result<u64, String> {
                let mut stream = TcpStream::connect(addr).map_err(|e| e.to_string())?;
                stream.set_read_timeout(Some(PATIENCE)).map_err(|e| e.to_string())?;
                let mut buf = Vec::new();
                let mut mine = 0;
                loop {
                    // Two pipelined requests at a time keep a response in flight.
                    let req = [GET_METRICS, GET_METRICS].concat();
                    if stream.write_all(&req).is_err() {
                        return Ok(mine); // the server is gone: nothing was cut
                    }
                    for _ in 0..2 {
                        match read_one(&mut stream, &mut buf)? {
                            Seen::Complete => {
                                mine += 1;
                                complete.fetch_add(1, Ordering::Relaxed);
                                if mine == 20 {
                                    ready.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                            Seen::Closed => return Ok(mine),
                        }
                    }
                }
            })
        })
        .collect();
    wait_for("every client under way", || ready.load(Ordering::Relaxed) == 4);
    run.signal("TERM");
    let (code, took) = run.wait_exit();
    let mut per_client = Vec::new();
    for c in clients {
        per_client.push(c.join().expect("client thread").unwrap_or_else(|e| panic!("a response was damaged: {e}")));
    }
    println!("SIGTERM under load: exit {code} after {took:?}; complete responses per client {per_client:?}");
    assert_eq!(code, 0);
    assert!(took < Duration::from_secs(2), "exit took {took:?}");
}

#[test]
fn memory_per_connection_is_bounded() {
    let _heavy = heavy();
    const IDLE: usize = 1_000;
    ensure_nofile(4 * IDLE as u64);
    let mut run =
        Running::start(fluxstat().args(["--listen", "127.0.0.1:0", "--max-connections", "1100", "--interval", "1h"]));
    let addr = run.listening_addr();
    let pid = run.child.id();
    let fds0 = steady_fd_count(pid);
    // Warm up: the shared buffers and the allocator's first arenas.
    for _ in 0..3 {
        let mut c = Client::connect(addr);
        for _ in 0..10 {
            assert_eq!(c.get("/metrics").status, 200);
        }
    }
    wait_for("the warm-up connections to close", || fd_count(pid) <= fds0);
    let rss0 = rss_kib(pid);

    // Idle keep-alive connections, each having been answered once.
    let mut idle = Vec::with_capacity(IDLE);
    for _ in 0..IDLE {
        let mut c = Client::connect(addr);
        assert_eq!(c.get("/health").status, 200);
        idle.push(c);
    }
    wait_for("1000 connections held", || fd_count(pid) >= fds0 + IDLE);
    let rss1 = rss_kib(pid);
    let per_conn = (rss1.saturating_sub(rss0) * 1024) as f64 / IDLE as f64;
    println!("memory: {IDLE} idle connections grew RSS from {rss0} KiB to {rss1} KiB: {per_conn:.0} bytes each");
    // Under qemu-user the RSS is qemu's, and grows with its translated-code cache
    // whenever a new code path runs: the bounds only mean something natively.
    let check_rss = !emulated();
    assert!(!check_rss || per_conn < 8192.0, "{per_conn:.0} bytes per idle connection");

    // A client that pipelines without reading: fluxstat stops reading once it
    // holds 16 KiB plus one response of unsent output, so its memory stays put.
    let hog = TcpStream::connect(addr).expect("connect");
    let sent = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (mut hog, sent, stop) = (hog.try_clone().expect("clone"), Arc::clone(&sent), Arc::clone(&stop));
        std::thread::spawn(move || {
            let batch = GET_METRICS.repeat(128);
            while !stop.load(Ordering::Relaxed) && sent.load(Ordering::Relaxed) < 64 << 20 {
                if hog.write_all(&batch).is_err() {
                    return;
                }
                sent.fetch_add(batch.len(), Ordering::Relaxed);
            }
        })
    };
    // Stalled: no progress for 300 ms, both sockets' buffers full.
    let mut last = (usize::MAX, Instant::now());
    wait_for("the pipelining client to stall", || {
        let now = sent.load(Ordering::Relaxed);
        if now != last.0 {
            last = (now, Instant::now());
        }
        last.1.elapsed() > Duration::from_millis(300)
    });
    let rss2 = rss_kib(pid);
    let grew = rss2.saturating_sub(rss1);
    println!(
        "memory: a client pipelining {} KiB without reading grew RSS by {grew} KiB",
        sent.load(Ordering::Relaxed) / 1024
    );
    assert!(!check_rss || grew < 256, "RSS grew by {grew} KiB for one client that does not read");
    stop.store(true, Ordering::Relaxed);
    hog.shutdown(std::net::Shutdown::Both).expect("shutdown");
    writer.join().expect("writer");
    drop(idle);
    run.signal("TERM");
    assert_eq!(run.wait_exit().0, 0);
}
