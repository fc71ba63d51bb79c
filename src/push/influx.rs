//! The InfluxDB pusher: each sample (or one every `--push-interval`) as line
//! protocol into a bounded backlog, sent oldest first by one HTTP/1.1 POST per
//! batch over a kept-alive connection, with back-off while the database is away.
//!
//! The 1.x API (`/write?db=…`, optional `USER:PASSWORD` as Basic auth) or the
//! 2.x/3.x API (`/api/v2/write?org=…&bucket=…`, `Authorization: Token …`) is
//! chosen by the URL's path. A 2xx drops the batch from the backlog as sent; a
//! 400 or 413 (data the server will never take) drops it as dropped; anything
//! else (no connection, timeout, 5xx, 401/403/404 while a database is being set
//! up) keeps it and retries after a doubling delay.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Instant;

use super::backlog::Backlog;
use super::net::{self, Backoff, Url};
use super::{Channel, Mailbox};

/// The largest body one POST carries (the backlog is sent in batches).
const MAX_BODY: usize = 256 * 1024;
/// The most of an answer read: its head, and a body kept for the log.
const MAX_HEAD: usize = 8 * 1024;
const MAX_BODY_READ: usize = 64 * 1024;

/// Where to write and how to authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub url: Url,
    /// The value of the `Authorization` header, from the credentials file.
    pub authorization: Option<String>,
}

impl Target {
    /// Checks the URL's path: `/write?db=…` (1.x) or `/api/v2/write?…bucket=…` (2.x).
    pub fn new(url: Url, secret: Option<&str>) -> Result<Target, String> {
        let (path, query) = url.path_and_query.split_once('?').unwrap_or((&url.path_and_query, ""));
        let has =
            |k: &str| query.split('&').any(|kv| kv.strip_prefix(k).is_some_and(|v| v.starts_with('=') && v.len() > 1));
        let v2 =
            match path.trim_end_matches('/') {
                p if p.ends_with("/api/v2/write") => true,
                p if p.ends_with("/write") => false,
                _ => return Err(
                    "the path must be /write?db=NAME (InfluxDB 1.x) or /api/v2/write?org=ORG&bucket=BUCKET (2.x, 3.x)"
                        .into(),
                ),
            };
        if v2 && !has("bucket") {
            return Err("/api/v2/write needs ?bucket=NAME (and org=ORG for InfluxDB 2.x)".into());
        }
        if !v2 && !has("db") {
            return Err("/write needs ?db=NAME".into());
        }
        let authorization = match secret {
            None => None,
            Some(s) if v2 => Some(format!("Token {s}")),
            Some(s) if s.contains(':') => Some(format!("Basic {}", base64(s.as_bytes()))),
            Some(_) => return Err("for /write (InfluxDB 1.x) the credentials file holds USER:PASSWORD".into()),
        };
        Ok(Target { url, authorization })
    }
}

/// Runs forever on the pusher's thread: moves the samples that came into the
/// backlog (encoded), sends it, and waits for the next sample, or for the next
/// retry while the database is away (taking the samples that come meanwhile).
pub fn run(target: &Target, mailbox: &Mailbox, capacity: usize, counters: &Channel) {
    let mut backlog = Backlog::new(capacity);
    let mut conn: Option<TcpStream> = None;
    let mut backoff = Backoff::default();
    let mut retry_at: Option<Instant> = None;
    let mut failing = false;
    loop {
        // Nothing to send: wait for a sample. Else wait only for a retry that is not due.
        let until = if backlog.is_empty() { None } else { Some(retry_at.unwrap_or_else(Instant::now)) };
        collect(mailbox, until, &mut backlog, counters);
        if backlog.is_empty() || retry_at.is_some_and(|t| Instant::now() < t) {
            continue;
        }
        let (body, n) = backlog.front(MAX_BODY);
        match post(target, &mut conn, &body) {
            Ok((status, _)) if (200..300).contains(&status) => {
                counters.add_sent(n as u64);
                backlog.pop(n);
                backoff.reset();
                retry_at = None;
                if failing {
                    crate::info!("InfluxDB push works again");
                    failing = false;
                }
            }
            Ok((status @ (400 | 413), text)) => {
                crate::warn!("InfluxDB refused {n} samples for good ({status}): {text}");
                counters.add_dropped(n as u64);
                backlog.pop(n);
            }
            other => {
                // The samples taken while the POST waited are counted as queued
                // before the failure is: the two counters agree in every sample.
                collect(mailbox, Some(Instant::now()), &mut backlog, counters);
                counters.add_failed();
                let why = match other {
                    Ok((status, text)) => format!("status {status}: {text}"),
                    Err(e) => e.to_string(),
                };
                let wait = backoff.delay();
                if !failing {
                    crate::warn!("InfluxDB push failed ({why}); keeping up to {capacity} samples, retrying");
                    failing = true;
                } else {
                    crate::debug!("InfluxDB push failed ({why}); retrying in {} s", wait.as_secs());
                }
                conn = None;
                retry_at = Some(Instant::now() + wait);
            }
        }
        counters.set_queued(backlog.len());
    }
}

/// Moves the samples that came (waiting as `Mailbox::wait` does) into the
/// backlog, encoded, and counts them.
fn collect(mailbox: &Mailbox, until: Option<Instant>, backlog: &mut Backlog, counters: &Channel) {
    for snapshot in mailbox.wait(until) {
        let mut text = String::new();
        super::line::encode(&snapshot, &mut text);
        counters.add_dropped(backlog.push(text.into_bytes()));
    }
    counters.set_queued(backlog.len());
}

/// One POST; on a kept-alive connection that turns out closed, once more on a
/// fresh one. The status and the start of the body.
fn post(target: &Target, conn: &mut Option<TcpStream>, body: &[u8]) -> io::Result<(u16, String)> {
    let mut head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: fluxstat/{}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n",
        target.url.path_and_query,
        target.url.authority(),
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    if let Some(a) = &target.authorization {
        head.push_str(&format!("Authorization: {a}\r\n"));
    }
    head.push_str("\r\n");
    // One write for head and body: one segment and one system call per batch.
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    // One deadline for the request and its answer, a retry on a fresh connection
    // included (only its connect has a 5 s of its own).
    let deadline = Instant::now() + net::DEADLINE;
    for attempt in 0..2 {
        let reused = conn.is_some();
        let mut stream = match conn.take() {
            Some(s) => s,
            None => net::connect(&target.url)?,
        };
        let result = send(&mut stream, &request, deadline)
            .and_then(|()| read_answer(&mut stream, deadline))
            .map_err(net::timed_out);
        match result {
            Ok((status, text, keep)) => {
                if keep {
                    *conn = Some(stream);
                }
                return Ok((status, text));
            }
            Err(e) if reused && attempt == 0 && e.kind() != io::ErrorKind::TimedOut => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("no answer"))
}

/// Writes `request` whole by `deadline`: each write waits at most the time left,
/// so a server that takes the bytes slowly cannot hold the pusher past it.
fn send(stream: &mut TcpStream, request: &[u8], deadline: Instant) -> io::Result<()> {
    let mut sent = 0;
    while sent < request.len() {
        stream.set_write_timeout(Some(left(deadline)?))?;
        match stream.write(&request[sent..]) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "the connection took no more")),
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The time left until `deadline`, or `TimedOut` when none is.
fn left(deadline: Instant) -> io::Result<std::time::Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(io::Error::new(io::ErrorKind::TimedOut, "the request and its answer took over 5 s"));
    }
    Ok(left)
}

/// Reads one answer by `deadline`: the status, the start of the body, and
/// whether the connection can carry the next request.
fn read_answer(stream: &mut TcpStream, deadline: Instant) -> io::Result<(u16, String, bool)> {
    let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_owned());
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    // Each read waits at most the time left: a server trickling bytes is cut off at the deadline.
    let read = |stream: &mut TcpStream, chunk: &mut [u8]| {
        stream.set_read_timeout(Some(left(deadline)?))?;
        stream.read(chunk)
    };
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_HEAD {
            return Err(bad("answer head too large"));
        }
        let n = read(stream, &mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed before an answer"));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status: u16 = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|r| r.get(2..5))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("not an HTTP/1.x answer"))?;
    let (mut length, mut keep, mut chunked) = (None, true, false);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = value.parse::<usize>().ok(),
            "connection" if value.eq_ignore_ascii_case("close") => keep = false,
            "transfer-encoding" => chunked = true,
            _ => {}
        }
    }
    let mut body = buf[head_end..].to_vec();
    let length = match (status, length) {
        (204 | 304, _) => 0,
        (_, Some(n)) if !chunked && n <= MAX_BODY_READ => n,
        // Chunked or unbounded: keep what came, do not reuse the connection.
        _ => {
            keep = false;
            body.len()
        }
    };
    while body.len() < length {
        let n = read(stream, &mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "answer cut short"));
        }
        body.extend_from_slice(&chunk[..n]);
    }
    if body.len() > length {
        keep = false;
    }
    let text: String = String::from_utf8_lossy(&body).chars().take(200).collect();
    Ok((status, text.trim().to_owned(), keep))
}

/// Standard base64 with padding, for Basic authentication.
fn base64(input: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ABC[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_table() {
        for (i, o) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("user:pa ss", "dXNlcjpwYSBzcw==")] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn the_api_is_chosen_by_the_path() {
        let url = |s: &str| Url::parse(s, "http", 8086).expect("url");
        let t = Target::new(url("http://h/api/v2/write?org=o&bucket=b"), Some("tok")).expect("v2");
        assert_eq!(t.authorization.as_deref(), Some("Token tok"));
        let t = Target::new(url("http://h/write?db=x"), Some("u:p")).expect("v1");
        assert_eq!(t.authorization.as_deref(), Some("Basic dTpw"));
        assert!(Target::new(url("http://h/write?db=x"), None).expect("v1").authorization.is_none());
        for bad in
            ["http://h/", "http://h/write", "http://h/write?db=", "http://h/api/v2/write?org=o", "http://h/query?db=x"]
        {
            assert!(Target::new(url(bad), None).is_err(), "{bad}");
        }
        assert!(Target::new(url("http://h/write?db=x"), Some("token-without-colon")).is_err());
    }
}
