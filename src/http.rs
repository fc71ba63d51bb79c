//! HTTP/1.1 on the wire: request-head parsing with httparse, the limits and the
//! one mapping from every parse failure to its status, routing, and response heads.
//!
//! The only module that knows httparse. It does no I/O: `parse` looks at bytes,
//! `respond` appends bytes to an output buffer. Entity headers (Content-Length,
//! ETag) are rendered once per sample by `Entity::json`, so answering a request
//! formats no numbers.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::access::Access;

/// A request head larger than this is refused with 431 (SPEC §3).
pub const MAX_HEAD: usize = 8 * 1024;
/// More header lines than this is refused with 431 (SPEC §3).
pub const MAX_HEADERS: usize = 32;

/// The statuses fluxstat sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    NoContent,
    NotModified,
    BadRequest,
    NotFound,
    MethodNotAllowed,
    RequestTimeout,
    ContentTooLarge,
    HeadersTooLarge,
    ServiceUnavailable,
    VersionNotSupported,
    Unauthorized,
    Forbidden,
    MisdirectedRequest,
}

impl Status {
    pub fn code(self) -> u16 {
        match self {
            Status::Ok => 200,
            Status::NoContent => 204,
            Status::NotModified => 304,
            Status::BadRequest => 400,
            Status::NotFound => 404,
            Status::MethodNotAllowed => 405,
            Status::RequestTimeout => 408,
            Status::ContentTooLarge => 413,
            Status::HeadersTooLarge => 431,
            Status::ServiceUnavailable => 503,
            Status::VersionNotSupported => 505,
            Status::Unauthorized => 401,
            Status::Forbidden => 403,
            Status::MisdirectedRequest => 421,
        }
    }

    fn status_line(self) -> &'static [u8] {
        match self {
            Status::Ok => b"HTTP/1.1 200 OK\r\n",
            Status::NoContent => b"HTTP/1.1 204 No Content\r\n",
            Status::NotModified => b"HTTP/1.1 304 Not Modified\r\n",
            Status::BadRequest => b"HTTP/1.1 400 Bad Request\r\n",
            Status::NotFound => b"HTTP/1.1 404 Not Found\r\n",
            Status::MethodNotAllowed => b"HTTP/1.1 405 Method Not Allowed\r\n",
            Status::RequestTimeout => b"HTTP/1.1 408 Request Timeout\r\n",
            Status::ContentTooLarge => b"HTTP/1.1 413 Content Too Large\r\n",
            Status::HeadersTooLarge => b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
            Status::ServiceUnavailable => b"HTTP/1.1 503 Service Unavailable\r\n",
            Status::VersionNotSupported => b"HTTP/1.1 505 HTTP Version Not Supported\r\n",
            Status::Unauthorized => b"HTTP/1.1 401 Unauthorized\r\n",
            Status::Forbidden => b"HTTP/1.1 403 Forbidden\r\n",
            Status::MisdirectedRequest => b"HTTP/1.1 421 Misdirected Request\r\n",
        }
    }

    /// The `message` of the JSON error body.
    pub fn message(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::NoContent => "No content",
            Status::NotModified => "Not modified",
            Status::BadRequest => "Bad request",
            Status::NotFound => "Not found",
            Status::MethodNotAllowed => "Method not allowed",
            Status::RequestTimeout => "Request timeout",
            Status::ContentTooLarge => "Request bodies are not accepted",
            Status::HeadersTooLarge => "Request header fields too large",
            Status::ServiceUnavailable => "Service unavailable",
            Status::VersionNotSupported => "HTTP version not supported",
            Status::Unauthorized => "Unauthorized",
            Status::Forbidden => "Forbidden",
            Status::MisdirectedRequest => "Host not allowed",
        }
    }
}

/// Errors fluxstat answers with a JSON body (and then closes, except 404/405).
pub const ERROR_STATUSES: [Status; 10] = [
    Status::BadRequest,
    Status::NotFound,
    Status::MethodNotAllowed,
    Status::RequestTimeout,
    Status::ContentTooLarge,
    Status::HeadersTooLarge,
    Status::VersionNotSupported,
    Status::Unauthorized,
    Status::Forbidden,
    Status::MisdirectedRequest,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Options,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Metrics,
    Health,
    /// `/`, the device page.
    Page,
    /// `OPTIONS *`.
    Server,
    Unknown,
}

/// What fluxstat needs from one request head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'b> {
    pub method: Method,
    pub route: Route,
    /// Whether the client lets the connection stay open after this response.
    pub keep_alive: bool,
    /// HTTP/1.0, which needs an explicit `Connection: keep-alive` in the answer.
    pub http10: bool,
    pub if_none_match: Option<&'b [u8]>,
    /// The `Host` value, for the DNS-rebinding check.
    pub host: Option<&'b [u8]>,
    /// The credentials of `Authorization: Bearer <token>`.
    pub bearer: Option<&'b [u8]>,
    /// Whether `Accept-Encoding` admits gzip (or is absent: RFC 9110 §12.5.3
    /// would allow gzip then, but plain clients such as curl expect identity).
    pub accepts_gzip: bool,
}

/// The outcome of looking at the start of a connection's buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Parse<'b> {
    /// The head is not complete yet: read more. Never an error by itself.
    Partial,
    /// A complete head of this many bytes.
    Complete(Request<'b>, usize),
    /// Answer with this status and close the connection.
    Invalid(Status),
}

/// Parses the request head at the start of `buf`. Every way a head can be
/// refused is mapped to its status here, and nowhere else.
pub fn parse(buf: &[u8]) -> Parse<'_> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD => len,
        Ok(httparse::Status::Complete(_)) => return Parse::Invalid(Status::HeadersTooLarge),
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => return Parse::Invalid(Status::HeadersTooLarge),
        Ok(httparse::Status::Partial) => return Parse::Partial,
        Err(httparse::Error::TooManyHeaders) => return Parse::Invalid(Status::HeadersTooLarge),
        Err(httparse::Error::Version) => return Parse::Invalid(Status::VersionNotSupported),
        Err(_) => return Parse::Invalid(Status::BadRequest),
    };
    let http10 = req.version == Some(0);
    let method = match req.method {
        Some("GET") => Method::Get,
        Some("HEAD") => Method::Head,
        Some("OPTIONS") => Method::Options,
        _ => Method::Other,
    };
    let route = route(req.path.unwrap_or(""));

    let mut keep_alive = !http10;
    let mut hosts = 0;
    let mut content_length: Option<&[u8]> = None;
    let mut if_none_match = None;
    let mut host = None;
    let mut authorizations = 0;
    let mut bearer = None;
    let mut accepts_gzip = false;
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"host") {
            hosts += 1;
            host = Some(h.value);
        } else if name.eq_ignore_ascii_case(b"authorization") {
            authorizations += 1;
            bearer = bearer_credentials(h.value);
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in h.value.split(|&c| c == b',').map(trim) {
                if token.eq_ignore_ascii_case(b"close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && http10 {
                    keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case(b"content-length") {
            // RFC 9112 §6.3: differing or invalid lengths make the framing unknowable.
            let value = trim(h.value);
            if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
                return Parse::Invalid(Status::BadRequest);
            }
            match content_length {
                Some(prev) if prev != value => return Parse::Invalid(Status::BadRequest),
                _ => content_length = Some(value),
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            // A body of unknown length: it could smuggle a second request.
            return Parse::Invalid(Status::BadRequest);
        } else if name.eq_ignore_ascii_case(b"if-none-match") {
            if_none_match = Some(h.value);
        } else if name.eq_ignore_ascii_case(b"accept-encoding") {
            accepts_gzip |= admits_gzip(h.value);
        }
    }
    // RFC 9112 §3.2: a 1.1 request without exactly one Host gets 400.
    if hosts > 1 || (hosts == 0 && !http10) {
        return Parse::Invalid(Status::BadRequest);
    }
    // RFC 9110 §11.6.2 allows one set of credentials: two are ambiguous.
    if authorizations > 1 {
        return Parse::Invalid(Status::BadRequest);
    }
    // fluxstat takes no request bodies; reading past one would desynchronise.
    if content_length.is_some_and(|v| v.iter().any(|&d| d != b'0')) {
        return Parse::Invalid(Status::ContentTooLarge);
    }
    Parse::Complete(Request { method, route, keep_alive, http10, if_none_match, host, bearer, accepts_gzip }, len)
}

/// Whether an `Accept-Encoding` value names `gzip`, `x-gzip` or `*` without
/// `q=0` (RFC 9110 §12.5.3).
fn admits_gzip(value: &[u8]) -> bool {
    value.split(|&c| c == b',').any(|item| {
        let mut parts = item.split(|&c| c == b';').map(trim);
        let coding = parts.next().unwrap_or_default();
        let named = [&b"gzip"[..], b"x-gzip", b"*"].iter().any(|c| coding.eq_ignore_ascii_case(c));
        let refused = parts.any(|p| {
            p.len() >= 2 && p[..2].eq_ignore_ascii_case(b"q=") && p[2..].iter().all(|&c| c == b'0' || c == b'.')
        });
        named && !refused
    })
}

/// The token of `Bearer <token>` (RFC 6750 §2.1; the scheme is case-insensitive).
fn bearer_credentials(value: &[u8]) -> Option<&[u8]> {
    let value = trim(value);
    let split = value.iter().position(|&c| c == b' ' || c == b'\t')?;
    let (scheme, rest) = value.split_at(split);
    let token = trim(rest);
    (scheme.eq_ignore_ascii_case(b"bearer") && !token.is_empty()).then_some(token)
}

/// Whether the access policy refuses a parsed request, and with which status:
/// 421 for a `Host` that is not this server (DNS rebinding; on only when a token
/// or CORS is configured), 401 for `GET`/`HEAD /metrics` without the right token.
/// `/health` needs no token: probes must reach it, and it reveals only freshness.
pub fn refusal(req: &Request<'_>, access: &Access) -> Option<Status> {
    if let Some(hosts) = &access.hosts {
        // Browsers always send Host, so its absence (HTTP/1.0) is no rebinding.
        if !req.host.is_none_or(|h| hosts.allows(h)) {
            return Some(Status::MisdirectedRequest);
        }
    }
    if let Some(token) = &access.token {
        let guarded = req.route == Route::Metrics && matches!(req.method, Method::Get | Method::Head);
        if guarded && !req.bearer.is_some_and(|b| token.matches(b)) {
            return Some(Status::Unauthorized);
        }
    }
    None
}

fn route(target: &str) -> Route {
    // Origin form is the usual case; absolute form (RFC 9112 §3.2.2) loses its
    // scheme and authority. A path that merely contains "://" stays a path.
    let path = if target.starts_with('/') {
        target
    } else {
        match target.split_once("://") {
            Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
            None => target,
        }
    };
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    match path {
        "/metrics" => Route::Metrics,
        "/health" => Route::Health,
        "/" => Route::Page,
        "*" => Route::Server,
        _ => Route::Unknown,
    }
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !c.is_ascii_whitespace()).map_or(start, |e| e + 1);
    &b[start..end]
}

/// Weak comparison (RFC 9110 §13.1.2) of an If-None-Match value with our tag.
pub fn etag_matches(if_none_match: &[u8], etag: &[u8]) -> bool {
    if_none_match.split(|&c| c == b',').map(trim).any(|tag| {
        let tag = tag.strip_prefix(b"W/").unwrap_or(tag);
        tag == b"*" || tag == etag
    })
}

/// A JSON body with its entity headers rendered once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entity {
    pub body: Vec<u8>,
    /// `Content-Type`, `Content-Length` and, for samples, `Cache-Control` and `ETag`.
    headers: Vec<u8>,
    /// The `ETag` header line alone, for 304 answers.
    etag_line: Vec<u8>,
    etag: Vec<u8>,
}

impl Entity {
    /// `etag` is the quoted tag, or `None` for bodies that need no validation.
    /// With a tag, `no-cache` lets a cache keep the body and revalidate it; without
    /// one a cache could never reuse it, so `no-store` says so (RFC 9111 §5.2.2).
    pub fn json(body: Vec<u8>, etag: Option<&str>) -> Entity {
        let mut headers = format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len());
        let mut etag_line = String::new();
        if let Some(tag) = etag {
            etag_line = format!("Cache-Control: no-cache\r\nETag: {tag}\r\n");
        } else {
            headers.push_str("Cache-Control: no-store\r\n");
        }
        headers.push_str(&etag_line);
        Entity {
            body,
            headers: headers.into_bytes(),
            etag_line: etag_line.into_bytes(),
            etag: etag.unwrap_or("").into(),
        }
    }

    /// The JSON error body for `status`, in the original tool's shape.
    pub fn error(status: Status) -> Entity {
        Entity::json(crate::wire::error_body(status.code(), status.message()), None)
    }

    pub fn etag(&self) -> &[u8] {
        &self.etag
    }
}

/// What stays the same for every response on a server.
#[derive(Debug, Clone, Default)]
pub struct Common {
    /// CORS header lines, empty when CORS is off.
    pub cors: Vec<u8>,
}

impl Common {
    /// `origin` is `*` or one origin, already validated by the configuration.
    pub fn new(cors_origin: Option<&str>) -> Common {
        let cors = match cors_origin {
            None => String::new(),
            Some("*") => "Access-Control-Allow-Origin: *\r\n".to_owned(),
            Some(origin) => format!("Access-Control-Allow-Origin: {origin}\r\nVary: Origin\r\n"),
        };
        Common { cors: cors.into_bytes() }
    }
}

/// How the connection goes on after a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conn {
    /// HTTP/1.1 default: nothing to say.
    KeepAlive,
    /// HTTP/1.0 asked for keep-alive: confirm it.
    KeepAlive10,
    Close,
}

impl Conn {
    pub fn of(req: &Request<'_>) -> Conn {
        match (req.keep_alive, req.http10) {
            (false, _) => Conn::Close,
            (true, true) => Conn::KeepAlive10,
            (true, false) => Conn::KeepAlive,
        }
    }

    pub fn keeps_alive(self) -> bool {
        self != Conn::Close
    }

    fn header(self) -> &'static [u8] {
        match self {
            Conn::KeepAlive => b"",
            Conn::KeepAlive10 => b"Connection: keep-alive\r\n",
            Conn::Close => b"Connection: close\r\n",
        }
    }
}

/// How a response carries its entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// Headers and body.
    Full,
    /// Headers only (HEAD).
    HeadersOnly,
    /// `ETag` and `Cache-Control` only (304).
    Validators,
    /// No entity at all (204).
    None,
}

/// Appends one complete response to `out`.
#[allow(clippy::too_many_arguments)]
pub fn write(
    out: &mut Vec<u8>,
    status: Status,
    entity: Option<&Entity>,
    body: Body,
    extra: &[u8],
    common: &Common,
    date: &[u8],
    conn: Conn,
) {
    out.extend_from_slice(status.status_line());
    out.extend_from_slice(b"Date: ");
    out.extend_from_slice(date);
    out.extend_from_slice(b"\r\n");
    if let Some(e) = entity {
        match body {
            Body::Full | Body::HeadersOnly => out.extend_from_slice(&e.headers),
            Body::Validators => out.extend_from_slice(&e.etag_line),
            Body::None => {}
        }
    }
    out.extend_from_slice(extra);
    out.extend_from_slice(&common.cors);
    out.extend_from_slice(conn.header());
    out.extend_from_slice(b"\r\n");
    if let (Some(e), Body::Full) = (entity, body) {
        out.extend_from_slice(&e.body);
    }
}

/// The `Allow` header of 405 and OPTIONS answers.
pub const ALLOW: &[u8] = b"Allow: GET, HEAD, OPTIONS\r\n";
/// Extra headers of an OPTIONS answer when CORS is on: `Allow` and the preflight.
pub const ALLOW_AND_PREFLIGHT: &[u8] = b"Allow: GET, HEAD, OPTIONS\r\n\
Access-Control-Allow-Methods: GET, HEAD, OPTIONS\r\n\
Access-Control-Allow-Headers: Authorization, If-None-Match, Cache-Control\r\nAccess-Control-Max-Age: 86400\r\n";
/// Extra header of the 401 sent without the right bearer token (RFC 6750 §3).
pub const WWW_AUTHENTICATE: &[u8] = b"WWW-Authenticate: Bearer\r\n";

/// The IMF-fixdate of the `Date` header, re-rendered at most once a second.
#[derive(Debug, Default)]
pub struct DateCache {
    secs: u64,
    text: [u8; 29],
}

impl DateCache {
    pub fn get(&mut self, now: SystemTime) -> &[u8; 29] {
        let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if secs != self.secs || self.text[0] == 0 {
            self.secs = secs;
            self.text = http_date(secs);
        }
        &self.text
    }
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` (RFC 9110 §5.6.7).
pub fn http_date(unix_secs: u64) -> [u8; 29] {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let secs = i64::try_from(unix_secs).unwrap_or(0);
    let dt = time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let text = format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        DAYS[usize::from(dt.weekday().number_days_from_monday())],
        dt.day(),
        MONTHS[usize::from(u8::from(dt.month()) - 1)],
        dt.year(),
        dt.hour(),
        dt.minute(),
        dt.second()
    );
    let mut out = [b' '; 29];
    let n = text.len().min(29);
    out[..n].copy_from_slice(&text.as_bytes()[..n]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &[u8], want: Parse<'_>) {
        assert_eq!(parse(input), want, "{:?}", String::from_utf8_lossy(input));
    }

    fn get(route: Route, keep_alive: bool, http10: bool) -> Request<'static> {
        let host: Option<&'static [u8]> = if http10 { None } else { Some(b"a") };
        Request {
            method: Method::Get,
            route,
            keep_alive,
            http10,
            if_none_match: None,
            host,
            bearer: None,
            accepts_gzip: false,
        }
    }

    #[test]
    fn parse_table() {
        let ok = b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n";
        check(ok, Parse::Complete(get(Route::Metrics, true, false), ok.len()));
        check(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n", Parse::Complete(get(Route::Metrics, true, false), 38));
        check(
            b"GET http://pi:8001/health HTTP/1.1\r\nHost: a\r\n\r\n",
            Parse::Complete(get(Route::Health, true, false), 47),
        );
        check(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", Parse::Complete(get(Route::Page, true, false), 27));
        check(b"GET /?hosts=a,b:8001 HTTP/1.1\r\nHost: a\r\n\r\n", Parse::Complete(get(Route::Page, true, false), 42));
        check(b"GET /index.html HTTP/1.1\r\nHost: a\r\n\r\n", Parse::Complete(get(Route::Unknown, true, false), 37));
        check(
            b"GET /x://pi/metrics HTTP/1.1\r\nHost: a\r\n\r\n",
            Parse::Complete(get(Route::Unknown, true, false), 41),
        );
        check(b"GET /metrics HTTP/1.0\r\n\r\n", Parse::Complete(get(Route::Metrics, false, true), 25));
        check(
            b"GET /metrics HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
            Parse::Complete(get(Route::Metrics, true, true), 49),
        );
        check(
            b"GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: foo, close\r\n\r\n",
            Parse::Complete(get(Route::Metrics, false, false), 58),
        );
        check(
            b"GET /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
            Parse::Complete(get(Route::Metrics, true, false), 53),
        );
        check(b"GET /metrics HTTP/1.1\r\nHost: a\r\n", Parse::Partial);
        check(b"G", Parse::Partial);
        check(b"", Parse::Partial);
        // Malformed and hostile heads.
        check(b"GET /metrics HTTP/1.1\r\n\r\n", Parse::Invalid(Status::BadRequest));
        check(b"GET /metrics HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", Parse::Invalid(Status::BadRequest));
        check(b"GET /metrics HTTP/2.0\r\nHost: a\r\n\r\n", Parse::Invalid(Status::VersionNotSupported));
        check(b"GET  /metrics HTTP/1.1\r\nHost: a\r\n\r\n", Parse::Invalid(Status::BadRequest));
        check(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", Parse::Invalid(Status::BadRequest));
        check(b"GET /metrics HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n", Parse::Invalid(Status::BadRequest));
        check(
            b"POST /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
            Parse::Invalid(Status::ContentTooLarge),
        );
        check(
            b"GET /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\n",
            Parse::Invalid(Status::ContentTooLarge),
        );
        check(b"GET /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", Parse::Invalid(Status::BadRequest));
        check(
            b"GET /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 00\r\n\r\n",
            Parse::Invalid(Status::BadRequest),
        );
        check(
            b"POST /metrics HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            Parse::Invalid(Status::BadRequest),
        );
    }

    #[test]
    fn authorization_table() {
        let bearer = |header: &str| -> Result<Option<Vec<u8>>, Status> {
            let req = format!("GET /metrics HTTP/1.1\r\nHost: a\r\n{header}\r\n");
            match parse(req.as_bytes()) {
                Parse::Complete(r, _) => Ok(r.bearer.map(<[u8]>::to_vec)),
                Parse::Invalid(s) => Err(s),
                Parse::Partial => panic!("partial: {header:?}"),
            }
        };
        type Want<'a> = Result<Option<&'a [u8]>, Status>;
        let table: &[(&str, Want<'_>)] = &[
            ("", Ok(None)),
            ("Authorization: Bearer abc\r\n", Ok(Some(b"abc"))),
            ("authorization: bearer abc\r\n", Ok(Some(b"abc"))),
            ("Authorization: BEARER   a.b-c_d~+/=  \r\n", Ok(Some(b"a.b-c_d~+/="))),
            ("Authorization: Bearer\tabc\r\n", Ok(Some(b"abc"))),
            ("Authorization: Bearer\r\n", Ok(None)),
            ("Authorization: Bearer \r\n", Ok(None)),
            ("Authorization: Basic YTpi\r\n", Ok(None)),
            ("Authorization: Bearerabc\r\n", Ok(None)),
            ("Authorization: Bearer a\r\nAuthorization: Bearer a\r\n", Err(Status::BadRequest)),
        ];
        for (header, want) in table {
            assert_eq!(bearer(header), want.map(|o| o.map(<[u8]>::to_vec)), "{header:?}");
        }
    }

    #[test]
    fn refusal_table() {
        use crate::access::{Hosts, Token};
        let token = Token::new(b"t0k").expect("token");
        let open = Access::default();
        let guarded =
            Access { token: Some(token.clone()), hosts: Some(Hosts::new(&[], Some("pi"))), ..Access::default() };
        let hosts_only = Access { hosts: Some(Hosts::new(&[], None)), ..Access::default() };
        // (policy, request, refusal)
        let table: &[(&Access, &str, Option<Status>)] = &[
            (&open, "GET /metrics HTTP/1.1\r\nHost: evil.example\r\n\r\n", None),
            (&guarded, "GET /metrics HTTP/1.1\r\nHost: pi\r\nAuthorization: Bearer t0k\r\n\r\n", None),
            (&guarded, "HEAD /metrics HTTP/1.1\r\nHost: pi\r\nAuthorization: Bearer t0k\r\n\r\n", None),
            (&guarded, "GET /metrics HTTP/1.1\r\nHost: pi\r\n\r\n", Some(Status::Unauthorized)),
            (&guarded, "HEAD /metrics HTTP/1.1\r\nHost: pi\r\n\r\n", Some(Status::Unauthorized)),
            (
                &guarded,
                "GET /metrics?x HTTP/1.1\r\nHost: pi\r\nAuthorization: Bearer t0K\r\n\r\n",
                Some(Status::Unauthorized),
            ),
            (
                &guarded,
                "GET /metrics HTTP/1.1\r\nHost: pi\r\nAuthorization: Basic dDBr\r\n\r\n",
                Some(Status::Unauthorized),
            ),
            (&guarded, "GET /health HTTP/1.1\r\nHost: pi\r\n\r\n", None),
            (&guarded, "OPTIONS /metrics HTTP/1.1\r\nHost: pi\r\n\r\n", None),
            (&guarded, "GET /nope HTTP/1.1\r\nHost: 10.0.0.1:8001\r\n\r\n", None),
            (&guarded, "GET /metrics HTTP/1.0\r\nAuthorization: Bearer t0k\r\n\r\n", None),
            (
                &guarded,
                "GET /metrics HTTP/1.1\r\nHost: evil.example\r\nAuthorization: Bearer t0k\r\n\r\n",
                Some(Status::MisdirectedRequest),
            ),
            (&guarded, "GET /health HTTP/1.1\r\nHost: evil.example\r\n\r\n", Some(Status::MisdirectedRequest)),
            (&hosts_only, "GET /metrics HTTP/1.1\r\nHost: [::1]:8001\r\n\r\n", None),
            (&hosts_only, "GET /metrics HTTP/1.1\r\nHost: rebind.evil\r\n\r\n", Some(Status::MisdirectedRequest)),
        ];
        for &(access, req, want) in table {
            match parse(req.as_bytes()) {
                Parse::Complete(r, _) => assert_eq!(refusal(&r, access), want, "{req:?}"),
                other => panic!("{req:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn limits() {
        let mut many = b"GET /metrics HTTP/1.1\r\nHost: a\r\n".to_vec();
        for i in 0..MAX_HEADERS {
            many.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        check(&many, Parse::Invalid(Status::HeadersTooLarge));

        let exactly_32 = {
            let mut h = b"GET /metrics HTTP/1.1\r\nHost: a\r\n".to_vec();
            for i in 1..MAX_HEADERS {
                h.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
            }
            h.extend_from_slice(b"\r\n");
            h
        };
        assert!(matches!(parse(&exactly_32), Parse::Complete(_, _)));

        let mut huge = b"GET /metrics HTTP/1.1\r\nHost: a\r\nX: ".to_vec();
        huge.resize(MAX_HEAD, b'a');
        check(&huge, Parse::Invalid(Status::HeadersTooLarge));

        let mut fits = b"GET /metrics HTTP/1.1\r\nHost: a\r\nX: ".to_vec();
        fits.resize(MAX_HEAD - 4, b'a');
        fits.extend_from_slice(b"\r\n\r\n");
        assert_eq!(fits.len(), MAX_HEAD);
        assert!(matches!(parse(&fits), Parse::Complete(_, MAX_HEAD)));
    }

    #[test]
    fn methods() {
        let table: &[(&[u8], Method)] = &[
            (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", Method::Get),
            (b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n", Method::Head),
            (b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", Method::Options),
            (b"DELETE / HTTP/1.1\r\nHost: a\r\n\r\n", Method::Other),
            (b"get / HTTP/1.1\r\nHost: a\r\n\r\n", Method::Other),
        ];
        for &(input, want) in table {
            match parse(input) {
                Parse::Complete(r, _) => assert_eq!(r.method, want),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn accept_encoding_table() {
        let table: &[(&str, bool)] = &[
            ("", false),
            ("Accept-Encoding: gzip, deflate\r\n", true),
            ("Accept-Encoding: GZIP\r\n", true),
            ("Accept-Encoding: br;q=1.0, gzip;q=0.8, *;q=0.1\r\n", true),
            ("Accept-Encoding: x-gzip\r\n", true),
            ("Accept-Encoding: *\r\n", true),
            ("Accept-Encoding: identity\r\n", false),
            ("Accept-Encoding: \r\n", false),
            ("Accept-Encoding: gzip;q=0\r\n", false),
            ("Accept-Encoding: gzip; Q=0.000\r\n", false),
            ("Accept-Encoding: gzipped, br\r\n", false),
            ("Accept-Encoding: br\r\nAccept-Encoding: gzip\r\n", true),
        ];
        for &(header, want) in table {
            let req = format!("GET / HTTP/1.1\r\nHost: a\r\n{header}\r\n");
            match parse(req.as_bytes()) {
                Parse::Complete(r, _) => assert_eq!(r.accepts_gzip, want, "{header:?}"),
                other => panic!("{header:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn etag_table() {
        let tag = b"\"abc-1\"";
        let table: &[(&[u8], bool)] = &[
            (b"\"abc-1\"", true),
            (b"W/\"abc-1\"", true),
            (b"\"x\", \"abc-1\"", true),
            (b"*", true),
            (b"\"abc-2\"", false),
            (b"abc-1", false),
            (b"", false),
        ];
        for &(inm, want) in table {
            assert_eq!(etag_matches(inm, tag), want, "{:?}", String::from_utf8_lossy(inm));
        }
    }

    #[test]
    fn http_date_table() {
        let table: &[(u64, &str)] = &[
            (784_111_777, "Sun, 06 Nov 1994 08:49:37 GMT"),
            (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
            (1_795_636_479, "Wed, 25 Nov 2026 19:54:39 GMT"),
            (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
        ];
        for &(secs, want) in table {
            assert_eq!(std::str::from_utf8(&http_date(secs)).ok(), Some(want));
        }
    }

    #[test]
    fn response_heads() {
        let e = Entity::json(b"{}".to_vec(), Some("\"t\""));
        let mut out = Vec::new();
        let date = http_date(0);
        write(&mut out, Status::Ok, Some(&e), Body::Full, b"", &Common::new(Some("*")), &date, Conn::KeepAlive);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "HTTP/1.1 200 OK\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\nContent-Type: application/json\r\n\
Content-Length: 2\r\nCache-Control: no-cache\r\nETag: \"t\"\r\nAccess-Control-Allow-Origin: *\r\n\r\n{}"
        );
        out.clear();
        write(&mut out, Status::NotModified, Some(&e), Body::Validators, b"", &Common::default(), &date, Conn::Close);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "HTTP/1.1 304 Not Modified\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\nCache-Control: no-cache\r\n\
ETag: \"t\"\r\nConnection: close\r\n\r\n"
        );
    }
}
