//! HTTP/1.1 framing on one client connection: reading request heads and
//! bodies (`Content-Length` or chunked) under size limits and deadlines, and
//! writing responses. Routing and handlers live elsewhere; this file only
//! knows bytes, lengths and time.
//!
//! It is strict where leniency lets requests be smuggled or slowed down: a
//! head must end within [`MAX_HEAD_BYTES`], a request must arrive before its
//! deadline however slowly it trickles, `Content-Length` and
//! `Transfer-Encoding` together are refused, and so are unknown codings,
//! obsolete line folding and malformed lengths.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::http::ApiResponse;

/// The longest request head we read (request line + headers).
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// The most headers one request may carry.
pub const MAX_HEADERS: usize = 100;
/// How long writing one response may block on a client that does not read.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a waiting connection looks at the shutdown flag.
const WAKE_EVERY: Duration = Duration::from_millis(500);
/// How long, and how much, [`Connection::linger_close`] reads and discards.
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 4 * 1024 * 1024;

/// A parsed request head.
#[derive(Debug)]
pub struct RequestHead {
    /// Method, as sent.
    pub method: String,
    /// Request target (path and query).
    pub target: String,
    /// `HTTP/1.0` or `HTTP/1.1`.
    pub version: String,
    /// Headers with lower-case names, in order.
    pub headers: Vec<(String, String)>,
}

impl RequestHead {
    /// The first header called `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.all(name).next()
    }

    /// Every header called `name` (lower case), in order.
    pub fn all<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
        self.headers
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether this asks to become a WebSocket.
    pub fn is_websocket_upgrade(&self) -> bool {
        self.header("upgrade")
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
    }

    /// Whether the client wants the connection kept open after the response.
    pub fn keep_alive(&self) -> bool {
        let connection = self.header("connection").unwrap_or("");
        let has = |token: &str| {
            connection
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case(token))
        };
        if self.version == "HTTP/1.0" {
            has("keep-alive")
        } else {
            !has("close")
        }
    }
}

/// How the body of a request is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// Why a request could not be read. Each maps to the answer the client gets
/// (if any) before the connection closes.
#[derive(Debug)]
pub enum ReadError {
    /// The client closed or went quiet between requests: close silently.
    Closed,
    /// The socket failed mid-request: nobody to answer.
    Io,
    /// Malformed framing: 400 with this reason.
    BadRequest(String),
    /// The head is larger than [`MAX_HEAD_BYTES`] or has too many headers: 431.
    HeadTooLarge,
    /// The body is larger than the route accepts: 413.
    TooLarge(u64),
    /// The request did not arrive in time: 408.
    Timeout,
}

/// One client connection and the bytes read from it but not yet used.
pub struct Connection {
    tcp: TcpStream,
    buf: Vec<u8>,
}

impl Connection {
    /// Wraps an accepted socket.
    pub fn new(tcp: TcpStream) -> Self {
        let _ = tcp.set_nodelay(true);
        let _ = tcp.set_write_timeout(Some(WRITE_TIMEOUT));
        Connection {
            tcp,
            buf: Vec::with_capacity(1024),
        }
    }

    /// Gives back the socket and what was read past the last head (for a
    /// WebSocket upgrade).
    pub fn into_parts(self) -> (TcpStream, Vec<u8>) {
        (self.tcp, self.buf)
    }

    /// Closes without losing the last answer: stops sending, then reads and
    /// discards what the client still sends (for at most two seconds and
    /// 4 MiB). Closing with unread input would make the kernel reset the
    /// connection, and a reset can destroy an error answer the client has
    /// not read yet (say, a 413 sent while it is still uploading).
    pub fn linger_close(mut self) {
        let _ = self.tcp.shutdown(Shutdown::Write);
        let deadline = Instant::now() + LINGER_TIME;
        let mut discarded = self.buf.len();
        let mut chunk = [0u8; 16 * 1024];
        while discarded < LINGER_BYTES {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.tcp.set_read_timeout(Some(left)).is_err() {
                break;
            }
            match self.tcp.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => discarded += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    }

    /// Waits up to `idle` for the next request to begin, then reads its head
    /// until `deadline` after its first byte. Gives up waiting (with
    /// [`ReadError::Closed`]) once `stopping` is set and nothing has arrived.
    pub fn read_head(
        &mut self,
        idle: Duration,
        request_timeout: Duration,
        stopping: &AtomicBool,
    ) -> Result<RequestHead, ReadError> {
        let idle_until = Instant::now() + idle;
        while self.buf.is_empty() {
            if stopping.load(Ordering::SeqCst) {
                return Err(ReadError::Closed);
            }
            match self.fill(idle_until.min(Instant::now() + WAKE_EVERY)) {
                Ok(0) => return Err(ReadError::Closed),
                Ok(_) => {}
                Err(ReadError::Timeout) if Instant::now() < idle_until => {}
                Err(ReadError::Timeout | ReadError::Io) => return Err(ReadError::Closed),
                Err(e) => return Err(e),
            }
        }
        let deadline = Instant::now() + request_timeout;
        let end = loop {
            // Tolerate stray CRLFs between requests (RFC 9112 2.2).
            let blank = self
                .buf
                .iter()
                .take_while(|b| matches!(b, b'\r' | b'\n'))
                .count();
            self.buf.drain(..blank);
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                break end + 4;
            }
            if self.buf.len() > MAX_HEAD_BYTES {
                return Err(ReadError::HeadTooLarge);
            }
            if self.fill(deadline)? == 0 {
                return Err(ReadError::Io);
            }
        };
        if end > MAX_HEAD_BYTES + 4 {
            return Err(ReadError::HeadTooLarge);
        }
        let head = parse_head(&self.buf[..end - 4])?;
        self.buf.drain(..end);
        Ok(head)
    }

    /// Sends `100 Continue` when the client waits for it before the body.
    pub fn continue_if_expected(&mut self, head: &RequestHead) {
        if head
            .header("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
        {
            let _ = self.tcp.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
    }

    /// Reads a body of at most `limit` bytes, all of it before `deadline`.
    pub fn read_body(
        &mut self,
        framing: Framing,
        limit: u64,
        deadline: Instant,
    ) -> Result<Vec<u8>, ReadError> {
        match framing {
            Framing::Length(n) if n > limit => Err(ReadError::TooLarge(limit)),
            Framing::Length(n) => {
                let n = n as usize;
                self.fill_to(n, deadline)?;
                Ok(self.buf.drain(..n).collect())
            }
            Framing::Chunked => self.read_chunked(limit, deadline),
        }
    }

    fn read_chunked(&mut self, limit: u64, deadline: Instant) -> Result<Vec<u8>, ReadError> {
        let mut body = Vec::new();
        loop {
            let line = self.read_line(deadline)?;
            let size = line.split(';').next().unwrap_or("").trim();
            let size = (!size.is_empty() && size.len() <= 16)
                .then(|| u64::from_str_radix(size, 16).ok())
                .flatten()
                .ok_or_else(|| ReadError::BadRequest(format!("invalid chunk size {size:?}")))?;
            if size == 0 {
                // Trailers, up to the empty line; ignored.
                while !self.read_line(deadline)?.is_empty() {}
                return Ok(body);
            }
            if body.len() as u64 + size > limit {
                return Err(ReadError::TooLarge(limit));
            }
            let size = size as usize;
            self.fill_to(size + 2, deadline)?;
            if &self.buf[size..size + 2] != b"\r\n" {
                return Err(ReadError::BadRequest("chunk not followed by CRLF".into()));
            }
            body.extend(self.buf.drain(..size));
            self.buf.drain(..2);
        }
    }

    /// One CRLF-terminated line of at most 4 KiB, without the CRLF.
    fn read_line(&mut self, deadline: Instant) -> Result<String, ReadError> {
        loop {
            if let Some(end) = find(&self.buf, b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                self.buf.drain(..end + 2);
                return Ok(line);
            }
            if self.buf.len() > 4096 {
                return Err(ReadError::BadRequest("chunk header line too long".into()));
            }
            if self.fill(deadline)? == 0 {
                return Err(ReadError::Io);
            }
        }
    }

    /// Reads until at least `n` bytes are buffered.
    fn fill_to(&mut self, n: usize, deadline: Instant) -> Result<(), ReadError> {
        self.buf.reserve(n.saturating_sub(self.buf.len()));
        while self.buf.len() < n {
            if self.fill(deadline)? == 0 {
                return Err(ReadError::Io);
            }
        }
        Ok(())
    }

    /// One read, waiting at most until `deadline`; appends to the buffer.
    fn fill(&mut self, deadline: Instant) -> Result<usize, ReadError> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ReadError::Timeout);
            }
            let _ = self.tcp.set_read_timeout(Some(left));
            match self.tcp.read(&mut chunk) {
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return Err(ReadError::Io),
            }
        }
    }

    /// Writes a response in one go. `keep_alive: false` adds `connection: close`.
    pub fn write_response(
        &mut self,
        response: &ApiResponse,
        keep_alive: bool,
        head_only: bool,
    ) -> io::Result<()> {
        let mut out = Vec::with_capacity(160 + response.body.len());
        let _ = write!(
            out,
            "HTTP/1.1 {} {}\r\ncontent-type: {}\r\ncontent-length: {}\r\n",
            response.status,
            reason(response.status),
            response.content_type,
            response.body.len()
        );
        for (k, v) in &response.headers {
            if is_token(k) && !v.bytes().any(|b| b == b'\r' || b == b'\n') {
                let _ = write!(out, "{k}: {v}\r\n");
            } else {
                log::warn!("dropping an invalid response header {k:?}");
            }
        }
        if !keep_alive {
            out.extend_from_slice(b"connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        if !head_only {
            out.extend_from_slice(&response.body);
        }
        self.tcp.write_all(&out)
    }
}

/// The body framing a head announces (RFC 9112 6.3).
pub fn framing(head: &RequestHead) -> Result<Framing, ReadError> {
    let bad = |m: &str| Err(ReadError::BadRequest(m.into()));
    let lengths: Vec<&str> = head.all("content-length").collect();
    let codings: Vec<&str> = head.all("transfer-encoding").collect();
    if !codings.is_empty() {
        if !lengths.is_empty() {
            return bad("both Content-Length and Transfer-Encoding");
        }
        let joined = codings.join(",");
        let mut tokens = joined.split(',').map(str::trim).filter(|t| !t.is_empty());
        return match (tokens.next(), tokens.next()) {
            (Some(t), None) if t.eq_ignore_ascii_case("chunked") => Ok(Framing::Chunked),
            _ => bad("unsupported Transfer-Encoding (only chunked is accepted)"),
        };
    }
    let mut length = None;
    for value in lengths.iter().flat_map(|v| v.split(',')).map(str::trim) {
        if value.is_empty() || value.len() > 19 || !value.bytes().all(|b| b.is_ascii_digit()) {
            return bad("invalid Content-Length");
        }
        let n: u64 = value
            .parse()
            .map_err(|_| ReadError::BadRequest("invalid Content-Length".into()))?;
        if length.is_some_and(|l| l != n) {
            return bad("conflicting Content-Length values");
        }
        length = Some(n);
    }
    Ok(Framing::Length(length.unwrap_or(0)))
}

fn parse_head(raw: &[u8]) -> Result<RequestHead, ReadError> {
    let bad = |m: &str| ReadError::BadRequest(m.into());
    let text = std::str::from_utf8(raw).map_err(|_| bad("request head is not valid UTF-8"))?;
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or("");
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("malformed request line"));
    };
    if method.is_empty() || !is_token(method) {
        return Err(bad("malformed method"));
    }
    if !(target.starts_with('/') || target == "*")
        || target.bytes().any(|b| b.is_ascii_control() || b == b' ')
    {
        return Err(bad("malformed request target"));
    }
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(bad("unsupported HTTP version"));
    }
    let mut headers = Vec::new();
    for line in lines {
        if line.starts_with([' ', '\t']) {
            return Err(bad("obsolete header line folding"));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| bad("header line without a colon"))?;
        if !is_token(name) {
            return Err(bad("malformed header name"));
        }
        if value.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
            return Err(bad("control character in a header value"));
        }
        if headers.len() == MAX_HEADERS {
            return Err(ReadError::HeadTooLarge);
        }
        headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
    }
    Ok(RequestHead {
        method: method.to_string(),
        target: target.to_string(),
        version: version.to_string(),
        headers,
    })
}

/// An RFC 9110 token (method, header name).
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The reason phrase of the status codes we send.
fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Content Too Large",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(raw: &str) -> Result<RequestHead, ReadError> {
        parse_head(raw.as_bytes())
    }

    #[test]
    fn parses_a_head_and_its_framing() {
        let h =
            head("POST /api/x?y=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\nConnection: close")
                .unwrap();
        assert_eq!(
            (h.method.as_str(), h.target.as_str()),
            ("POST", "/api/x?y=1")
        );
        assert_eq!(h.header("host"), Some("a"));
        assert!(!h.keep_alive());
        assert_eq!(framing(&h).unwrap(), Framing::Length(12));
        let h = head("GET / HTTP/1.0\r\nConnection: Keep-Alive").unwrap();
        assert!(h.keep_alive());
        let h = head("POST / HTTP/1.1\r\nTransfer-Encoding: chunked").unwrap();
        assert_eq!(framing(&h).unwrap(), Framing::Chunked);
    }

    #[test]
    fn refuses_what_could_smuggle_a_request() {
        for raw in [
            "GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked",
            "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2",
            "GET / HTTP/1.1\r\nContent-Length: -1",
            "GET / HTTP/1.1\r\nContent-Length: 1 2",
            "GET / HTTP/1.1\r\nContent-Length: 99999999999999999999999",
            "GET / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked",
        ] {
            let h = head(raw).unwrap();
            assert!(
                matches!(framing(&h), Err(ReadError::BadRequest(_))),
                "{raw}"
            );
        }
        for raw in [
            "GET /\r\nHost: a",
            "GET / HTTP/2.0",
            "GET  / HTTP/1.1",
            "G(T / HTTP/1.1",
            "GET nothing HTTP/1.1",
            "GET / HTTP/1.1\r\nHost a",
            "GET / HTTP/1.1\r\nHost : a",
            "GET / HTTP/1.1\r\nX: a\r\n folded",
            "GET / HTTP/1.1\r\nX: a\0b",
        ] {
            assert!(matches!(head(raw), Err(ReadError::BadRequest(_))), "{raw}");
        }
    }
}
