//! The responder: listeners, one task per connection on a single-threaded smol
//! executor, timeouts, and the connection cap.
//!
//! Serving a request is: parse the head in a shared scratch buffer, take an `Arc`
//! to the latest `Published`, append its pre-rendered bytes to a shared output
//! buffer, write. It never samples, serialises or blocks.
//!
//! Memory per connection is bounded: an idle connection owns no buffers (reads go
//! to a scratch buffer shared by all connections, which is possible because the
//! executor has one thread and nothing borrows it across an await). A connection
//! only keeps bytes across an await when a request head is split over reads
//! (at most `MAX_HEAD`) or when the client does not read its responses (at most
//! `OUT_FLUSH` plus one response).
//!
//! Access is settled early: a peer outside the source allowlist gets 403 when its
//! connection is accepted, before a byte is read, and takes no connection slot;
//! the token and Host checks (`http::refusal`) run on each parsed head.
//!
//! Timeouts are enforced by one sweeper task that walks the connection table,
//! rather than a timer per request: each connection records its phase and since
//! when it is in it, and the sweeper kills those that overstayed.

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant, SystemTime};

use async_executor::LocalExecutor;
use async_io::{Async, Timer};
use futures_lite::StreamExt;
use slab::Slab;

use crate::access::{Access, Refusals, REFUSAL_LOG_WINDOW};
use crate::http::{self, Body, Conn, Entity, Method, Parse, Request, Route, Status, MAX_HEAD};
use crate::published::{Latest, Published};

/// Responses are written once this many bytes are queued, so a client that
/// pipelines without reading cannot make fluxstat buffer without bound.
pub const OUT_FLUSH: usize = 16 * 1024;
/// How long fluxstat keeps reading (and discarding) after an error response
/// before closing, so the client sees the response rather than a reset.
const LINGER: Duration = Duration::from_secs(1);
/// Consecutive reads served without waiting before the task yields to others.
const FAIR_READS: u32 = 16;
/// Pause after a failed accept (e.g. EMFILE), so a full descriptor table does not
/// turn the accept loop into a busy loop.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The responder's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub max_connections: usize,
    /// Time a client has to send a complete request head, and to take a response.
    pub request_timeout: Duration,
    /// Time a keep-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// The sample interval: `/health` is 503 once the sample is three intervals old.
    pub interval: Duration,
    pub cors_origin: Option<String>,
    /// Longest a graceful shutdown waits for responses in flight.
    pub shutdown_grace: Duration,
    /// Source allowlist, bearer token and Host check.
    pub access: Access,
}

/// Counters readable from other threads (tests, and the document's own figures).
#[derive(Debug, Default)]
pub struct Stats {
    pub open: AtomicUsize,
    /// Connections blocked on a client that does not read its responses.
    pub busy: AtomicUsize,
    pub requests: AtomicU64,
}

/// Serves until `shutdown` completes, then stops accepting, lets responses in
/// flight finish (up to `shutdown_grace`) and returns.
pub fn run(
    listeners: Vec<TcpListener>,
    latest: Arc<Latest>,
    settings: Settings,
    stats: Arc<Stats>,
    shutdown: impl Future<Output = ()> + 'static,
) -> io::Result<()> {
    let listeners = listeners.into_iter().map(Async::new).collect::<io::Result<Vec<_>>>()?;
    let state = Rc::new(State::new(latest, settings, stats));
    let ex = Rc::new(LocalExecutor::new());
    let main = {
        let ex = Rc::clone(&ex);
        async move {
            let accepting: Vec<_> =
                listeners.into_iter().map(|l| ex.spawn(accept_loop(Rc::clone(&ex), Rc::clone(&state), l))).collect();
            let sweeper = ex.spawn(sweep_loop(Rc::clone(&state)));
            // Its own task: the executor polls this main future on every wake-up,
            // and polling a task handle costs nothing, whereas polling the signal
            // stream costs a system call (measured: one recvfrom per request).
            ex.spawn(shutdown).await;
            drop(accepting);
            state.begin_shutdown();
            let deadline = Instant::now() + state.settings.shutdown_grace;
            while !state.conns.borrow().is_empty() && Instant::now() < deadline {
                Timer::after(Duration::from_millis(5)).await;
            }
            drop(sweeper);
        }
    };
    async_io::block_on(ex.run(main));
    Ok(())
}

struct State {
    latest: Arc<Latest>,
    settings: Settings,
    common: http::Common,
    errors: Vec<(Status, Entity)>,
    date: RefCell<http::DateCache>,
    conns: RefCell<Slab<Rc<Ctl>>>,
    lingering: Cell<usize>,
    shutting_down: Cell<bool>,
    last_accept_warning: Cell<Option<Instant>>,
    refusals: RefCell<Refusals>,
    /// Shared by all connections; never borrowed across an await.
    scratch_in: RefCell<Vec<u8>>,
    scratch_out: RefCell<Vec<u8>>,
    stats: Arc<Stats>,
}

impl State {
    fn new(latest: Arc<Latest>, settings: Settings, stats: Arc<Stats>) -> State {
        State {
            latest,
            common: http::Common::new(settings.cors_origin.as_deref()),
            settings,
            errors: http::ERROR_STATUSES.iter().map(|&s| (s, Entity::error(s))).collect(),
            date: RefCell::default(),
            conns: RefCell::new(Slab::new()),
            lingering: Cell::new(0),
            shutting_down: Cell::new(false),
            last_accept_warning: Cell::new(None),
            refusals: RefCell::new(Refusals::new(REFUSAL_LOG_WINDOW)),
            scratch_in: RefCell::new(vec![0; MAX_HEAD]),
            scratch_out: RefCell::new(Vec::with_capacity(OUT_FLUSH * 2)),
            stats,
        }
    }

    fn error(&self, status: Status) -> Option<&Entity> {
        self.errors.iter().find(|(s, _)| *s == status).map(|(_, e)| e)
    }

    fn write(&self, out: &mut Vec<u8>, status: Status, entity: Option<&Entity>, body: Body, extra: &[u8], conn: Conn) {
        let date = *self.date.borrow_mut().get(SystemTime::now());
        http::write(out, status, entity, body, extra, &self.common, &date, conn);
    }

    fn write_error(&self, out: &mut Vec<u8>, status: Status, extra: &[u8], conn: Conn) {
        self.write(out, status, self.error(status), Body::Full, extra, conn);
    }

    /// Answers one request; returns how the connection goes on.
    fn respond(&self, req: &Request<'_>, published: &Published, out: &mut Vec<u8>) -> Conn {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let conn = if self.shutting_down.get() { Conn::Close } else { Conn::of(req) };
        let body = if req.method == Method::Head { Body::HeadersOnly } else { Body::Full };
        if let Some(status) = http::refusal(req, &self.settings.access) {
            // A client may retry with a token; a request for a foreign host name is
            // hostile (DNS rebinding), so that connection ends.
            let (extra, conn) =
                if status == Status::Unauthorized { (http::WWW_AUTHENTICATE, conn) } else { (&b""[..], Conn::Close) };
            self.write(out, status, self.error(status), body, extra, conn);
            return conn;
        }
        match (req.route, req.method) {
            (Route::Unknown, _) | (Route::Server, Method::Get | Method::Head) => {
                self.write(out, Status::NotFound, self.error(Status::NotFound), body, b"", conn);
            }
            (_, Method::Options) => {
                let extra = if self.common.cors.is_empty() { http::ALLOW } else { http::ALLOW_AND_PREFLIGHT };
                self.write(out, Status::NoContent, None, Body::None, extra, conn);
            }
            (_, Method::Other) => {
                self.write(
                    out,
                    Status::MethodNotAllowed,
                    self.error(Status::MethodNotAllowed),
                    body,
                    http::ALLOW,
                    conn,
                );
            }
            (Route::Metrics, _) => {
                let e = &published.metrics;
                match req.if_none_match {
                    Some(inm) if http::etag_matches(inm, e.etag()) => {
                        self.write(out, Status::NotModified, Some(e), Body::Validators, b"", conn);
                    }
                    _ => self.write(out, Status::Ok, Some(e), body, b"", conn),
                }
            }
            (Route::Health, _) => {
                let (ok, e) = published.health(self.settings.interval * 3);
                let status = if ok { Status::Ok } else { Status::ServiceUnavailable };
                self.write(out, status, Some(e), body, b"", conn);
            }
        }
        conn
    }

    /// Makes room for a new connection by closing the one that has waited longest
    /// without a complete request. False when every connection is mid-response.
    fn displace_one(&self) -> bool {
        let mut conns = self.conns.borrow_mut();
        let victim = conns
            .iter()
            .filter(|(_, c)| matches!(c.phase.get(), Phase::Head | Phase::Idle | Phase::Linger))
            .min_by_key(|(_, c)| c.since.get())
            .map(|(key, _)| key);
        match victim {
            Some(key) => {
                let ctl = conns.remove(key);
                ctl.kill(Kill::Displaced);
                self.stats.open.store(conns.len(), Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    fn deregister(&self, key: usize, ctl: &Rc<Ctl>) {
        let mut conns = self.conns.borrow_mut();
        if conns.get(key).is_some_and(|c| Rc::ptr_eq(c, ctl)) {
            conns.remove(key);
        }
        self.stats.open.store(conns.len(), Ordering::Relaxed);
    }

    fn begin_shutdown(&self) {
        self.shutting_down.set(true);
        for (_, ctl) in self.conns.borrow().iter() {
            if ctl.phase.get() != Phase::Busy {
                ctl.kill(Kill::Shutdown);
            }
        }
    }

    fn accept_failed(&self, e: &io::Error) {
        let now = Instant::now();
        let quiet = self.last_accept_warning.get().is_some_and(|t| now.duration_since(t) < Duration::from_secs(10));
        if !quiet {
            crate::warn!("accept failed: {e} (backing off; repeats silenced for 10 s)");
            self.last_accept_warning.set(Some(now));
        }
    }
}

/// Where a connection is in its life, for timeouts and displacement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for (the rest of) a request head: `request_timeout`.
    Head,
    /// Keep-alive, nothing buffered: `idle_timeout`.
    Idle,
    /// Waiting for the client to take a response: `request_timeout`.
    Busy,
    /// Discarding input after an error response: `LINGER`.
    Linger,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kill {
    Timeout,
    Displaced,
    Shutdown,
}

/// A connection's control block, shared between its task and the sweeper.
struct Ctl {
    phase: Cell<Phase>,
    since: Cell<Instant>,
    kill: Cell<Option<Kill>>,
    waker: Cell<Option<Waker>>,
}

impl Ctl {
    fn enter(&self, phase: Phase, stats: &Stats) {
        let was = self.phase.replace(phase);
        if was != phase {
            self.since.set(Instant::now());
            if phase == Phase::Busy {
                stats.busy.fetch_add(1, Ordering::Relaxed);
            } else if was == Phase::Busy {
                stats.busy.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    fn kill(&self, why: Kill) {
        if self.kill.get().is_none() {
            self.kill.set(Some(why));
            if let Some(w) = self.waker.take() {
                w.wake();
            }
        }
    }

    fn limit(&self, s: &Settings) -> Duration {
        match self.phase.get() {
            Phase::Head | Phase::Busy => s.request_timeout,
            Phase::Idle => s.idle_timeout,
            Phase::Linger => LINGER.min(s.request_timeout),
        }
    }
}

/// Why a connection stopped.
enum Stop {
    Killed(Kill),
    Io(io::Error),
}

/// Awaits `fut` unless the sweeper (or displacement, or shutdown) kills the connection.
async fn killable<F: Future<Output = io::Result<()>>>(ctl: &Ctl, fut: F) -> Result<(), Stop> {
    futures_lite::pin!(fut);
    poll_fn(|cx| {
        if let Some(why) = ctl.kill.get() {
            return Poll::Ready(Err(Stop::Killed(why)));
        }
        let mut w = ctl.waker.take();
        if !w.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            w = Some(cx.waker().clone());
        }
        ctl.waker.set(w);
        fut.as_mut().poll(cx).map_err(Stop::Io)
    })
    .await
}

async fn accept_loop(ex: Rc<LocalExecutor<'static>>, state: Rc<State>, listener: Async<TcpListener>) {
    loop {
        match listener.accept().await {
            // Once per connection, before reading a byte of it.
            Ok((stream, peer)) if state.settings.access.allow.allows(peer.ip()) => admit(&ex, &state, stream),
            Ok((stream, peer)) => refuse(&ex, &state, stream, peer.ip()),
            Err(e) => {
                state.accept_failed(&e);
                Timer::after(ACCEPT_BACKOFF).await;
            }
        }
    }
}

fn admit(ex: &LocalExecutor<'static>, state: &Rc<State>, stream: Async<TcpStream>) {
    // One write per response batch; Nagle would only add latency.
    let _ = stream.get_ref().set_nodelay(true);
    let full = state.conns.borrow().len() >= state.settings.max_connections;
    if full && !state.displace_one() {
        if state.lingering.get() < state.settings.max_connections {
            state.lingering.set(state.lingering.get() + 1);
            ex.spawn(reject(Rc::clone(state), stream, Status::ServiceUnavailable, http::RETRY_AFTER)).detach();
        }
        return;
    }
    let ctl = Rc::new(Ctl {
        phase: Cell::new(Phase::Head),
        since: Cell::new(Instant::now()),
        kill: Cell::new(None),
        waker: Cell::new(None),
    });
    let key = {
        let mut conns = state.conns.borrow_mut();
        let key = conns.insert(Rc::clone(&ctl));
        state.stats.open.store(conns.len(), Ordering::Relaxed);
        key
    };
    let state = Rc::clone(state);
    ex.spawn(async move {
        let result = connection(&state, &stream, &ctl).await;
        finish(&state, &stream, &ctl, result).await;
        // Leave Busy, if killed there, so the busy count stays exact.
        ctl.enter(Phase::Linger, &state.stats);
        state.deregister(key, &ctl);
    })
    .detach();
}

/// 403 for a peer outside `--allow`: answered and closed without reading its
/// request, and counted for the rate-limited log line.
fn refuse(ex: &LocalExecutor<'static>, state: &Rc<State>, stream: Async<TcpStream>, peer: std::net::IpAddr) {
    if let Some(report) = state.refusals.borrow_mut().record(Instant::now(), peer.to_canonical()) {
        crate::warn!("{report}");
    }
    if state.lingering.get() < state.settings.max_connections {
        state.lingering.set(state.lingering.get() + 1);
        ex.spawn(reject(Rc::clone(state), stream, Status::Forbidden, b"")).detach();
    }
}

/// Answers a connection that is not served with `status` and closes it: 503 with
/// Retry-After when every slot is mid-response, 403 outside the allowlist.
async fn reject(state: Rc<State>, stream: Async<TcpStream>, status: Status, extra: &'static [u8]) {
    let mut out = Vec::new();
    state.write_error(&mut out, status, extra, Conn::Close);
    let deadline = Timer::after(LINGER);
    let send = async {
        let _ = write_all(&stream, &mut out).await;
        let _ = stream.get_ref().shutdown(Shutdown::Write);
        linger(&stream).await;
    };
    futures_lite::future::or(send, async {
        deadline.await;
    })
    .await;
    state.lingering.set(state.lingering.get().saturating_sub(1));
}

/// What to do once the connection loop ended.
async fn finish(state: &State, stream: &Async<TcpStream>, ctl: &Ctl, result: Result<Lingering, Stop>) {
    match result {
        Ok(Lingering::No) => {
            let _ = stream.get_ref().shutdown(Shutdown::Write);
        }
        Ok(Lingering::Yes) => {
            ctl.enter(Phase::Linger, &state.stats);
            let _ = stream.get_ref().shutdown(Shutdown::Write);
            let _ = killable(ctl, async {
                linger(stream).await;
                Ok(())
            })
            .await;
        }
        Err(Stop::Killed(Kill::Timeout)) if ctl.phase.get() == Phase::Head => {
            let mut out = Vec::new();
            state.write_error(&mut out, Status::RequestTimeout, b"", Conn::Close);
            let _ = write_now(stream, &out);
            let _ = stream.get_ref().shutdown(Shutdown::Write);
        }
        Err(Stop::Killed(_)) => {}
        Err(Stop::Io(e)) => crate::debug!("connection closed: {e}"),
    }
}

/// Whether the connection should discard the client's remaining input before
/// closing (after an error, the client may still be sending).
enum Lingering {
    Yes,
    No,
}

/// Serves one connection until it closes.
async fn connection(state: &State, stream: &Async<TcpStream>, ctl: &Ctl) -> Result<Lingering, Stop> {
    // Bytes of an incomplete head, or unprocessed pipelined requests, kept across awaits.
    let mut pending_in: Vec<u8> = Vec::new();
    // Response bytes the socket did not take yet.
    let mut pending_out: Vec<u8> = Vec::new();
    // `pending_in` may hold complete requests (processing stopped at OUT_FLUSH).
    let mut more = false;
    // Until the first request is answered, waiting counts as waiting for a head
    // (request timeout), not as keep-alive idling.
    let mut answered = false;
    let mut reads = 0u32;
    loop {
        let outcome =
            step(state, stream, &mut pending_in, &mut pending_out, &mut more, &mut answered).map_err(Stop::Io)?;
        if !pending_out.is_empty() {
            ctl.enter(Phase::Busy, &state.stats);
            killable(ctl, write_all(stream, &mut pending_out)).await?;
            pending_out = Vec::new();
        }
        match outcome {
            Outcome::Eof => return Ok(Lingering::No),
            Outcome::Close => return Ok(Lingering::No),
            Outcome::Error => return Ok(Lingering::Yes),
            Outcome::Served if state.shutting_down.get() && !more => return Ok(Lingering::No),
            Outcome::Served if !more && pending_in.is_empty() => {
                // A request-response client says nothing more until it has read the
                // answer: wait for readiness instead of a read that would find
                // nothing (one system call less per request; the readiness
                // registration reports data that is already there).
                ctl.enter(Phase::Idle, &state.stats);
                killable(ctl, stream.readable()).await?;
                reads = 0;
            }
            Outcome::Served => {
                reads += 1;
                if reads >= FAIR_READS {
                    reads = 0;
                    futures_lite::future::yield_now().await;
                }
            }
            Outcome::Wait => {
                if state.shutting_down.get() {
                    return Ok(Lingering::No);
                }
                let idle = answered && pending_in.is_empty();
                ctl.enter(if idle { Phase::Idle } else { Phase::Head }, &state.stats);
                killable(ctl, stream.readable()).await?;
                reads = 0;
            }
        }
    }
}

enum Outcome {
    /// Requests were answered; look for more.
    Served,
    /// Nothing to read now.
    Wait,
    /// The client closed its side.
    Eof,
    /// The last answer said `Connection: close`.
    Close,
    /// A request was refused with a 4xx/5xx: close after lingering.
    Error,
}

/// One synchronous round: read what the socket has (unless buffered requests are
/// waiting), answer every complete request, and write as much as the socket takes.
/// Borrows the shared scratch buffers only within this call.
fn step(
    state: &State,
    stream: &Async<TcpStream>,
    pending_in: &mut Vec<u8>,
    pending_out: &mut Vec<u8>,
    more: &mut bool,
    answered: &mut bool,
) -> io::Result<Outcome> {
    let mut scratch = state.scratch_in.borrow_mut();
    let held = pending_in.len();
    scratch[..held].copy_from_slice(pending_in);
    let filled = if *more {
        held
    } else {
        match stream.get_ref().read(&mut scratch[held..]) {
            Ok(0) => return Ok(Outcome::Eof),
            Ok(n) => held + n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => {
                return Ok(Outcome::Wait);
            }
            Err(e) => return Err(e),
        }
    };
    let input = &scratch[..filled];

    let mut out = state.scratch_out.borrow_mut();
    out.clear();
    let mut pos = 0;
    let mut outcome = Outcome::Served;
    *more = false;
    let mut published = None;
    while pos < input.len() {
        match http::parse(&input[pos..]) {
            Parse::Partial => break,
            Parse::Complete(req, len) => {
                pos += len;
                *answered = true;
                let p = published.get_or_insert_with(|| state.latest.load());
                if !state.respond(&req, p, &mut out).keeps_alive() {
                    outcome = Outcome::Close;
                    break;
                }
                if out.len() >= OUT_FLUSH {
                    *more = pos < input.len();
                    break;
                }
            }
            Parse::Invalid(status) => {
                state.write_error(&mut out, status, b"", Conn::Close);
                outcome = Outcome::Error;
                break;
            }
        }
    }
    pending_in.clear();
    if matches!(outcome, Outcome::Served) {
        pending_in.extend_from_slice(&input[pos..]);
    }
    let written = write_now(stream, &out)?;
    pending_out.extend_from_slice(&out[written..]);
    Ok(outcome)
}

/// Writes what the socket takes without waiting.
fn write_now(stream: &Async<TcpStream>, mut buf: &[u8]) -> io::Result<usize> {
    let total = buf.len();
    while !buf.is_empty() {
        match stream.get_ref().write(buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(total - buf.len())
}

/// Writes all of `buf`, waiting for the socket as needed.
async fn write_all(stream: &Async<TcpStream>, buf: &mut Vec<u8>) -> io::Result<()> {
    while !buf.is_empty() {
        let n = write_now(stream, buf)?;
        buf.drain(..n);
        if !buf.is_empty() {
            stream.writable().await?;
        }
    }
    Ok(())
}

/// Reads and discards until the client closes (bounded by the caller's timeout).
async fn linger(stream: &Async<TcpStream>) {
    let mut sink = [0u8; 512];
    loop {
        match stream.get_ref().read(&mut sink) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if stream.readable().await.is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Enforces every connection's timeout, several times per shortest timeout.
async fn sweep_loop(state: Rc<State>) {
    let s = &state.settings;
    // LINGER (1 s) needs no finer tick than the 1 s cap.
    let shortest = s.request_timeout.min(s.idle_timeout);
    let tick = (shortest / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut ticks = Timer::interval(tick);
    while ticks.next().await.is_some() {
        let now = Instant::now();
        if let Some(report) = state.refusals.borrow_mut().flush(now) {
            crate::warn!("{report}");
        }
        for (_, ctl) in state.conns.borrow().iter() {
            if now.duration_since(ctl.since.get()) >= ctl.limit(s) {
                ctl.kill(Kill::Timeout);
            }
        }
    }
}
