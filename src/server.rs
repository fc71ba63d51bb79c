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
//! rather than a timer per request: each connection records its phase and when it
//! last made progress in it (the first byte of the current head, the last byte
//! the client took, the last answer), and the sweeper kills those that overstayed.
//! The sweeper sleeps until the nearest deadline, and for good when there is no
//! connection; a connection whose deadline comes sooner wakes it.
//!
//! When the table is full, a newcomer displaces the connection that has waited
//! longest: idle, trickling a head, lingering, or not taking its responses (a
//! client that takes no bytes is no more deserving than an idle one). Sockets
//! (connections, refused ones being answered, displaced ones closing) never
//! exceed `fds::socket_budget`, which `fds::cap` fits into `RLIMIT_NOFILE`.

pub mod fds;

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::{poll_fn, Future};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant, SystemTime};

use slab::Slab;
use smol::LocalExecutor;
use smol::{Async, Timer};

use crate::access::{Access, Refusals, REFUSAL_LOG_WINDOW};
use crate::http::{self, Body, Conn, Entity, Method, Parse, Request, Route, Status, MAX_HEAD};
use crate::page::{self, Page};
use crate::published::{Latest, Published};

/// Responses are written once this many bytes are queued, so a client that
/// pipelines without reading cannot make fluxstat buffer without bound.
pub const OUT_FLUSH: usize = 16 * 1024;
/// The kernel's send buffer per connection (it reserves twice this). Without a
/// cap, Linux grows it to `tcp_wmem`'s maximum (4 MiB by default) for a client
/// that pipelines and never reads, so such a client would pin megabytes of
/// kernel memory and look idle rather than busy; a batch of answers (`OUT_FLUSH`
/// plus one response) fits many times over.
const SEND_BUFFER: usize = 64 * 1024;
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
    /// Whether `/` serves the device page (`--page`); 404 when off.
    pub page: bool,
}

/// Counters readable from other threads (tests, and the document's own figures).
#[derive(Debug, Default)]
pub struct Stats {
    pub open: AtomicUsize,
    /// Connections blocked on a client that does not read its responses.
    pub busy: AtomicUsize,
    pub requests: RequestCounter,
}

/// The requests-served counter: 64 bits where the target has 64-bit atomics, the
/// pointer width elsewhere (32-bit MIPS has no 64-bit atomics; its counter wraps
/// after 2^32 requests, decades at a request a second).
#[cfg(target_has_atomic = "64")]
pub type RequestCounter = std::sync::atomic::AtomicU64;
/// The requests-served counter (see the 64-bit definition).
#[cfg(not(target_has_atomic = "64"))]
pub type RequestCounter = AtomicUsize;

impl Stats {
    /// Requests served so far, as the document reports them.
    pub fn requests_served(&self) -> u64 {
        // usize is at most 64 bits on every target Rust supports.
        #[allow(clippy::useless_conversion)]
        u64::try_from(self.requests.load(Ordering::Relaxed)).unwrap_or(u64::MAX)
    }
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
    smol::block_on(ex.run(main));
    Ok(())
}

struct State {
    latest: Arc<Latest>,
    settings: Settings,
    common: http::Common,
    errors: Vec<(Status, Entity)>,
    /// The device page's heads, when `--page` is on.
    page: Option<Page>,
    date: RefCell<http::DateCache>,
    conns: RefCell<Slab<Rc<Ctl>>>,
    /// Refused connections being answered (403): at most `reject_budget`.
    lingering: Cell<usize>,
    reject_budget: usize,
    /// Sockets held by tasks: connections, refused ones, displaced ones closing.
    sockets: Cell<usize>,
    /// The most `sockets` may be; the accept loops wait when it is reached.
    socket_budget: usize,
    /// Accept loops waiting for a socket to close.
    accept_waiters: RefCell<Vec<Waker>>,
    sweep: Sweep,
    shutting_down: Cell<bool>,
    last_accept_warning: Cell<Option<Instant>>,
    refusals: RefCell<Refusals>,
    /// When the refusal log last spoke, and when it will speak next if refusals
    /// were silenced since.
    refusal_reported: Cell<Option<Instant>>,
    refusal_due: Cell<Option<Instant>>,
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
            reject_budget: fds::reject_budget(settings.max_connections),
            socket_budget: fds::socket_budget(settings.max_connections),
            page: settings.page.then(Page::new),
            settings,
            errors: http::ERROR_STATUSES.iter().map(|&s| (s, Entity::error(s))).collect(),
            date: RefCell::default(),
            conns: RefCell::new(Slab::new()),
            lingering: Cell::new(0),
            sockets: Cell::new(0),
            accept_waiters: RefCell::default(),
            sweep: Sweep::default(),
            shutting_down: Cell::new(false),
            last_accept_warning: Cell::new(None),
            refusals: RefCell::new(Refusals::new(REFUSAL_LOG_WINDOW)),
            refusal_reported: Cell::new(None),
            refusal_due: Cell::new(None),
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

    /// Answers one request; returns how the connection goes on, and the status
    /// (for the debug log of a connection that ends with it).
    fn respond(&self, req: &Request<'_>, published: &Published, out: &mut Vec<u8>) -> (Conn, Status) {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let conn = if self.shutting_down.get() { Conn::Close } else { Conn::of(req) };
        let body = if req.method == Method::Head { Body::HeadersOnly } else { Body::Full };
        if let Some(status) = http::refusal(req, &self.settings.access) {
            // A client may retry with a token; a request for a foreign host name is
            // hostile (DNS rebinding), so that connection ends.
            let (extra, conn) =
                if status == Status::Unauthorized { (http::WWW_AUTHENTICATE, conn) } else { (&b""[..], Conn::Close) };
            self.write(out, status, self.error(status), body, extra, conn);
            return (conn, status);
        }
        // With `--page off`, `/` is a path like any unknown one.
        let route = if req.route == Route::Page && self.page.is_none() { Route::Unknown } else { req.route };
        let status = match (route, req.method) {
            (Route::Unknown, _) | (Route::Server, Method::Get | Method::Head) => {
                self.write(out, Status::NotFound, self.error(Status::NotFound), body, b"", conn);
                Status::NotFound
            }
            (_, Method::Options) => {
                let extra = if self.common.cors.is_empty() { http::ALLOW } else { http::ALLOW_AND_PREFLIGHT };
                self.write(out, Status::NoContent, None, Body::None, extra, conn);
                Status::NoContent
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
                Status::MethodNotAllowed
            }
            (Route::Metrics, _) => {
                let e = &published.metrics;
                match req.if_none_match {
                    Some(inm) if http::etag_matches(inm, e.etag()) => {
                        self.write(out, Status::NotModified, Some(e), Body::Validators, b"", conn);
                        Status::NotModified
                    }
                    _ => {
                        self.write(out, Status::Ok, Some(e), body, b"", conn);
                        Status::Ok
                    }
                }
            }
            (Route::Page, _) => self.page(req, body, conn, out),
            (Route::Health, _) => {
                let (ok, e) = published.health(self.settings.interval * 3);
                let status = if ok { Status::Ok } else { Status::ServiceUnavailable };
                self.write(out, status, Some(e), body, b"", conn);
                status
            }
        };
        (conn, status)
    }

    /// The device page: its pre-rendered heads, then the gzipped bytes, or
    /// them decoded for a client that does not take gzip.
    fn page(&self, req: &Request<'_>, body: Body, conn: Conn, out: &mut Vec<u8>) -> Status {
        let Some(p) = &self.page else {
            self.write(out, Status::NotFound, self.error(Status::NotFound), body, b"", conn);
            return Status::NotFound;
        };
        let v = if req.accepts_gzip { &p.gzip } else { &p.identity };
        if req.if_none_match.is_some_and(|inm| http::etag_matches(inm, &v.etag)) {
            self.write(out, Status::NotModified, None, Body::None, &v.validators, conn);
            return Status::NotModified;
        }
        self.write(out, Status::Ok, None, Body::None, &v.headers, conn);
        match body {
            Body::Full if req.accepts_gzip => out.extend_from_slice(page::GZIP),
            Body::Full => page::write_identity(out),
            _ => {}
        }
        Status::Ok
    }

    /// Makes room for a new connection by closing the one that has waited longest:
    /// idle, trickling a head, lingering after an error, or not taking its
    /// responses (waiting since the last byte it took).
    fn displace_one(&self) {
        let mut conns = self.conns.borrow_mut();
        let victim = conns.iter().min_by_key(|(_, c)| c.since.get()).map(|(key, _)| key);
        if let Some(key) = victim {
            let ctl = conns.remove(key);
            ctl.kill(Kill::Displaced);
            self.stats.open.store(conns.len(), Ordering::Relaxed);
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

    /// Logs a refusal report, and notes when the next one may be due.
    fn refusal_report(&self, now: Instant, report: Option<crate::access::Report>) {
        match report {
            Some(report) => {
                crate::warn!("{report}");
                self.refusal_reported.set(Some(now));
                self.refusal_due.set(None);
            }
            None => {
                // Silenced: the sweeper flushes it once the window has passed.
                let due = self.refusal_reported.get().and_then(|t| t.checked_add(REFUSAL_LOG_WINDOW));
                self.refusal_due.set(due);
                self.sweep.need(due);
            }
        }
    }
}

/// When the sweeper looks next, and how to wake it sooner.
#[derive(Default)]
struct Sweep {
    /// `None`: not until woken (no connection).
    at: Cell<Option<Instant>>,
    waker: Cell<Option<Waker>>,
}

impl Sweep {
    /// Makes sure the sweeper looks no later than `when`.
    fn need(&self, when: Option<Instant>) {
        let Some(when) = when else { return };
        if self.at.get().is_none_or(|at| when < at) {
            self.at.set(Some(when));
            if let Some(w) = self.waker.take() {
                w.wake();
            }
        }
    }
}

/// Where a connection is in its life, for timeouts and displacement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for (the rest of) a request head: `request_timeout` from its first byte.
    Head,
    /// Keep-alive, nothing buffered: `idle_timeout` from the last answer.
    Idle,
    /// Waiting for the client to take a response: `request_timeout` from the
    /// last byte it took.
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
    /// The start of the current wait: when the phase began, or the connection
    /// last made progress in it.
    since: Cell<Instant>,
    kill: Cell<Option<Kill>>,
    waker: Cell<Option<Waker>>,
}

impl Ctl {
    fn enter(&self, phase: Phase, state: &State) {
        let was = self.phase.replace(phase);
        if was != phase {
            self.since.set(Instant::now());
            if phase == Phase::Busy {
                state.stats.busy.fetch_add(1, Ordering::Relaxed);
            } else if was == Phase::Busy {
                state.stats.busy.fetch_sub(1, Ordering::Relaxed);
            }
            // A shorter timeout may now come before the sweeper's next look.
            state.sweep.need(self.deadline(&state.settings));
        }
    }

    /// Ends the connection's accounting: leaves Busy, if killed there, so the
    /// busy count stays exact.
    fn leave(&self, state: &State) {
        if self.phase.replace(Phase::Linger) == Phase::Busy {
            state.stats.busy.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// The connection made progress: its wait starts again.
    fn progress(&self) {
        self.since.set(Instant::now());
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

    /// When the current wait times out (`None`: beyond what `Instant` holds).
    fn deadline(&self, s: &Settings) -> Option<Instant> {
        self.since.get().checked_add(self.limit(s))
    }
}

/// Why a connection stopped.
enum Stop {
    Killed(Kill),
    Io(io::Error),
}

/// Awaits `fut` unless the sweeper (or displacement, or shutdown) kills the connection.
async fn killable<T, F: Future<Output = io::Result<T>>>(ctl: &Ctl, fut: F) -> Result<T, Stop> {
    smol::pin!(fut);
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

/// An accepted socket, counted against the socket budget until it is closed.
struct Socket {
    stream: Async<TcpStream>,
    peer: SocketAddr,
    state: Rc<State>,
}

impl Socket {
    fn new(stream: Async<TcpStream>, peer: SocketAddr, state: &Rc<State>) -> Socket {
        state.sockets.set(state.sockets.get() + 1);
        Socket { stream, peer, state: Rc::clone(state) }
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        // The descriptor closes right after this, before any other task runs.
        let s = &self.state;
        s.sockets.set(s.sockets.get().saturating_sub(1));
        for w in s.accept_waiters.borrow_mut().drain(..) {
            w.wake();
        }
    }
}

/// Waits until a socket may be accepted without exceeding the socket budget.
async fn socket_room(state: &State) {
    poll_fn(|cx| {
        if state.sockets.get() < state.socket_budget {
            return Poll::Ready(());
        }
        state.accept_waiters.borrow_mut().push(cx.waker().clone());
        Poll::Pending
    })
    .await;
}

async fn accept_loop(ex: Rc<LocalExecutor<'static>>, state: Rc<State>, listener: Async<TcpListener>) {
    loop {
        socket_room(&state).await;
        match listener.accept().await {
            // Another listener filled the budget meanwhile: close at once.
            Ok(_) if state.sockets.get() >= state.socket_budget => {}
            // Once per connection, before reading a byte of it.
            Ok((stream, peer)) if state.settings.access.allow.allows(peer.ip()) => {
                admit(&ex, &state, Socket::new(stream, peer, &state));
            }
            Ok((stream, peer)) => refuse(&ex, &state, Socket::new(stream, peer, &state)),
            Err(e) => {
                state.accept_failed(&e);
                Timer::after(ACCEPT_BACKOFF).await;
            }
        }
    }
}

fn admit(ex: &LocalExecutor<'static>, state: &Rc<State>, socket: Socket) {
    // One write per response batch; Nagle would only add latency.
    let _ = socket.stream.get_ref().set_nodelay(true);
    let _ = rustix::net::sockopt::set_socket_send_buffer_size(socket.stream.get_ref(), SEND_BUFFER);
    if state.conns.borrow().len() >= state.settings.max_connections {
        // Every connection can be displaced, so the newcomer is always served.
        // The displaced one closes when its task next runs; until then its
        // socket counts against the socket budget.
        state.displace_one();
    }
    let ctl = Rc::new(Ctl {
        phase: Cell::new(Phase::Head),
        since: Cell::new(Instant::now()),
        kill: Cell::new(None),
        waker: Cell::new(None),
    });
    let (key, open) = {
        let mut conns = state.conns.borrow_mut();
        let key = conns.insert(Rc::clone(&ctl));
        state.stats.open.store(conns.len(), Ordering::Relaxed);
        (key, conns.len())
    };
    state.sweep.need(ctl.deadline(&state.settings));
    crate::debug!("connection from {} opened ({open} open)", socket.peer);
    let state = Rc::clone(state);
    ex.spawn(async move {
        let result = connection(&state, &socket.stream, &ctl).await;
        let ended = finish(&state, &socket.stream, &ctl, result).await;
        crate::debug!("connection from {} closed: {ended}", socket.peer);
        ctl.leave(&state);
        state.deregister(key, &ctl);
    })
    .detach();
}

/// 403 for a peer outside `--allow`: answered and closed without reading its
/// request, and counted for the rate-limited log line.
fn refuse(ex: &LocalExecutor<'static>, state: &Rc<State>, socket: Socket) {
    let now = Instant::now();
    let report = state.refusals.borrow_mut().record(now, socket.peer.ip().to_canonical());
    state.refusal_report(now, report);
    if state.lingering.get() < state.reject_budget {
        state.lingering.set(state.lingering.get() + 1);
        ex.spawn(reject(socket, Status::Forbidden)).detach();
    }
}

/// Answers a connection that is not served with `status` (403 outside the
/// allowlist) and closes it.
async fn reject(socket: Socket, status: Status) {
    crate::debug!("connection from {} refused: {}", socket.peer, status.code());
    let (state, stream) = (&socket.state, &socket.stream);
    let mut out = Vec::new();
    state.write_error(&mut out, status, b"", Conn::Close);
    let deadline = Timer::after(LINGER);
    let send = async {
        let _ = write_all(stream, &mut out, None).await;
        let _ = stream.get_ref().shutdown(Shutdown::Write);
        linger(stream).await;
    };
    smol::future::or(send, async {
        deadline.await;
    })
    .await;
    state.lingering.set(state.lingering.get().saturating_sub(1));
}

/// How a connection ended, for the debug log.
enum Ended {
    /// The client closed its side between requests.
    Eof,
    /// An answer said `Connection: close` (with this status).
    Close(Status),
    /// A request was refused with this status; fluxstat lingered, then closed.
    Error(Status),
    Timeout(Phase),
    Displaced,
    Shutdown,
    Io(io::Error),
}

impl fmt::Display for Ended {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ended::Eof => f.write_str("eof from the client"),
            Ended::Close(s) => write!(f, "Connection: close after a {} answer", s.code()),
            Ended::Error(s) => write!(f, "error response {}", s.code()),
            Ended::Timeout(Phase::Head) => f.write_str("timeout waiting for a request head (408)"),
            Ended::Timeout(Phase::Idle) => f.write_str("idle timeout"),
            Ended::Timeout(Phase::Busy) => f.write_str("timeout: the client took no response bytes"),
            Ended::Timeout(Phase::Linger) => f.write_str("linger timeout after an error response"),
            Ended::Displaced => f.write_str("displaced to make room for a new connection"),
            Ended::Shutdown => f.write_str("shutdown"),
            Ended::Io(e) => write!(f, "io error: {e}"),
        }
    }
}

/// What to do once the connection loop ended; returns how it ended.
async fn finish(state: &State, stream: &Async<TcpStream>, ctl: &Ctl, result: Result<Closing, Stop>) -> Ended {
    match result {
        Ok(Closing::Now(ended)) => {
            let _ = stream.get_ref().shutdown(Shutdown::Write);
            ended
        }
        Ok(Closing::Linger(status)) => {
            ctl.enter(Phase::Linger, state);
            let _ = stream.get_ref().shutdown(Shutdown::Write);
            let _ = killable(ctl, async {
                linger(stream).await;
                Ok(())
            })
            .await;
            Ended::Error(status)
        }
        Err(Stop::Killed(Kill::Timeout)) if ctl.phase.get() == Phase::Head => {
            let mut out = Vec::new();
            state.write_error(&mut out, Status::RequestTimeout, b"", Conn::Close);
            let _ = write_now(stream, &out);
            let _ = stream.get_ref().shutdown(Shutdown::Write);
            Ended::Timeout(Phase::Head)
        }
        Err(Stop::Killed(Kill::Timeout)) => Ended::Timeout(ctl.phase.get()),
        Err(Stop::Killed(Kill::Displaced)) => Ended::Displaced,
        Err(Stop::Killed(Kill::Shutdown)) => Ended::Shutdown,
        Err(Stop::Io(e)) => Ended::Io(e),
    }
}

/// How the connection loop ended.
enum Closing {
    /// Close now.
    Now(Ended),
    /// After an error response (this status): discard the client's remaining
    /// input before closing, since the client may still be sending.
    Linger(Status),
}

/// Serves one connection until it closes.
async fn connection(state: &State, stream: &Async<TcpStream>, ctl: &Ctl) -> Result<Closing, Stop> {
    // Bytes of an incomplete head, or unprocessed pipelined requests, kept across
    // awaits; freed whenever it empties, so an idle connection holds no buffer.
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
        let round =
            step(state, stream, &mut pending_in, &mut pending_out, &mut more, &mut answered).map_err(Stop::Io)?;
        if round.answered > 0 {
            // Answers restart the clock: the idle timer, and the head timer of
            // whatever part of the next head came with them.
            ctl.progress();
        }
        if !pending_out.is_empty() {
            ctl.enter(Phase::Busy, state);
            killable(ctl, write_all(stream, &mut pending_out, Some(ctl))).await?;
            pending_out = Vec::new();
        }
        match round.outcome {
            Outcome::Eof => return Ok(Closing::Now(Ended::Eof)),
            Outcome::Close(status) => return Ok(Closing::Now(Ended::Close(status))),
            Outcome::Error(status) => return Ok(Closing::Linger(status)),
            Outcome::Served if state.shutting_down.get() && !more => return Ok(Closing::Now(Ended::Shutdown)),
            Outcome::Served if !more && pending_in.is_empty() => {
                // A request-response client says nothing more until it has read the
                // answer: wait for readiness instead of a read that would find
                // nothing (one system call less per request; the readiness
                // registration reports data that is already there).
                ctl.enter(Phase::Idle, state);
                killable(ctl, stream.readable()).await?;
                reads = 0;
            }
            Outcome::Served => {
                reads += 1;
                if reads >= FAIR_READS {
                    reads = 0;
                    smol::future::yield_now().await;
                }
            }
            Outcome::Wait => {
                if state.shutting_down.get() {
                    return Ok(Closing::Now(Ended::Shutdown));
                }
                let idle = answered && pending_in.is_empty();
                ctl.enter(if idle { Phase::Idle } else { Phase::Head }, state);
                killable(ctl, stream.readable()).await?;
                reads = 0;
            }
        }
    }
}

enum Outcome {
    /// Requests were answered (or part of a head was read); look for more.
    Served,
    /// Nothing to read now.
    Wait,
    /// The client closed its side.
    Eof,
    /// The last answer (this status) said `Connection: close`.
    Close(Status),
    /// A request was refused with this 4xx/5xx: close after lingering.
    Error(Status),
}

/// What one `step` did.
struct Round {
    outcome: Outcome,
    /// Requests answered.
    answered: usize,
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
) -> io::Result<Round> {
    let mut scratch = state.scratch_in.borrow_mut();
    let held = pending_in.len();
    scratch[..held].copy_from_slice(pending_in);
    let filled = if *more {
        held
    } else {
        match stream.get_ref().read(&mut scratch[held..]) {
            Ok(0) => return Ok(Round { outcome: Outcome::Eof, answered: 0 }),
            Ok(n) => held + n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => {
                return Ok(Round { outcome: Outcome::Wait, answered: 0 });
            }
            Err(e) => return Err(e),
        }
    };
    let input = &scratch[..filled];

    let mut out = state.scratch_out.borrow_mut();
    out.clear();
    let mut pos = 0;
    let mut outcome = Outcome::Served;
    let mut count = 0;
    *more = false;
    let mut published = None;
    while pos < input.len() {
        match http::parse(&input[pos..]) {
            Parse::Partial => break,
            Parse::Complete(req, len) => {
                pos += len;
                count += 1;
                *answered = true;
                let p = published.get_or_insert_with(|| state.latest.load());
                let (conn, status) = state.respond(&req, p, &mut out);
                if !conn.keeps_alive() {
                    outcome = Outcome::Close(status);
                    break;
                }
                if out.len() >= OUT_FLUSH {
                    *more = pos < input.len();
                    break;
                }
            }
            Parse::Invalid(status) => {
                state.write_error(&mut out, status, b"", Conn::Close);
                outcome = Outcome::Error(status);
                break;
            }
        }
    }
    let rest = if matches!(outcome, Outcome::Served) { &input[pos..] } else { &[][..] };
    if rest.is_empty() {
        // Give the buffer back: a connection between requests holds none.
        *pending_in = Vec::new();
    } else if count == 0 {
        // Nothing answered: the read only added to the head.
        pending_in.extend_from_slice(&input[held..]);
    } else {
        pending_in.clear();
        pending_in.extend_from_slice(rest);
    }
    let written = write_now(stream, &out)?;
    pending_out.extend_from_slice(&out[written..]);
    Ok(Round { outcome, answered: count })
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

/// Writes all of `buf`, waiting for the socket as needed; every byte the client
/// takes counts as progress of `ctl`.
async fn write_all(stream: &Async<TcpStream>, buf: &mut Vec<u8>, ctl: Option<&Ctl>) -> io::Result<()> {
    while !buf.is_empty() {
        let n = write_now(stream, buf)?;
        if n > 0 {
            if let Some(ctl) = ctl {
                ctl.progress();
            }
        }
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

/// Enforces every connection's timeout and flushes the refusal log. Sleeps until
/// the nearest deadline, looking at most once per `tick` (a quarter of the
/// shortest timeout, 10 ms to 1 s), and not at all while there is nothing to
/// time out; `Sweep::need` wakes it sooner.
async fn sweep_loop(state: Rc<State>) {
    let s = &state.settings;
    // LINGER (1 s) needs no finer tick than the 1 s cap.
    let shortest = s.request_timeout.min(s.idle_timeout);
    let tick = (shortest / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut timer = Timer::never();
    loop {
        let now = Instant::now();
        let flushed = state.refusals.borrow_mut().flush(now);
        if flushed.is_some() {
            state.refusal_report(now, flushed);
        } else if state.refusal_due.get().is_some_and(|due| due <= now) {
            state.refusal_due.set(None); // nothing was left to report
        }
        let mut next = state.refusal_due.get();
        for (_, ctl) in state.conns.borrow().iter() {
            if ctl.kill.get().is_some() {
                continue;
            }
            match ctl.deadline(s) {
                Some(d) if d <= now => ctl.kill(Kill::Timeout),
                Some(d) => next = Some(next.map_or(d, |n| n.min(d))),
                None => {}
            }
        }
        let next = next.map(|d| d.max(now + tick));
        state.sweep.at.set(next);
        match next {
            Some(at) => timer.set_at(at),
            None => timer = Timer::never(),
        }
        poll_fn(|cx| {
            if state.sweep.at.get() != next || Pin::new(&mut timer).poll(cx).is_ready() {
                return Poll::Ready(());
            }
            state.sweep.waker.set(Some(cx.waker().clone()));
            Poll::Pending
        })
        .await;
    }
}
