//! The TCP front door. We own the listening socket and give every accepted
//! connection its own thread, which reads the request head and then either
//! - keeps the socket for a WebSocket upgrade to `/sockets/...` (handled by
//!   tungstenite on our own `TcpStream`, so it can be read and written at once),
//! - or splices the connection to the internal tiny_http server on a private
//!   Unix socket: one thread copies client -> tiny_http, another copies back.
//!
//! Owning `accept` also means one failing `accept` (e.g. out of file
//! descriptors) is logged and retried instead of ending the server.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The longest request head we read (request line + headers).
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// How long a client may take to send a request head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an idle keep-alive connection stays open.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// A parsed request head: what we need to route a connection.
pub struct RequestHead {
    /// Method.
    pub method: String,
    /// Request target (path and query).
    pub target: String,
    /// Headers with lower-case names.
    pub headers: Vec<(String, String)>,
}

impl RequestHead {
    /// A header by lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn is_websocket_upgrade(&self) -> bool {
        self.header("upgrade")
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
    }
}

/// What a connection thread hands WebSocket upgrades to.
pub type UpgradeHandler = dyn Fn(TcpStream, RequestHead, Vec<u8>) + Send + Sync;

/// Shared state of the accept loop and its connection threads.
pub struct Frontend {
    pub(crate) internal: PathBuf,
    pub(crate) upgrade: Box<UpgradeHandler>,
    pub(crate) stopping: AtomicBool,
    pub(crate) open_connections: AtomicUsize,
}

/// Accepts connections until [`Frontend::stopping`] is set.
pub fn accept_loop(listener: TcpListener, frontend: Arc<Frontend>) {
    let mut backoff = Duration::from_millis(5);
    for stream in listener.incoming() {
        if frontend.stopping.load(Ordering::SeqCst) {
            break;
        }
        match stream {
            Ok(tcp) => {
                backoff = Duration::from_millis(5);
                let fe = Arc::clone(&frontend);
                fe.open_connections.fetch_add(1, Ordering::SeqCst);
                let spawned = std::thread::Builder::new()
                    .name("conn".into())
                    .spawn(move || {
                        serve_connection(tcp, &fe);
                        if fe.open_connections.fetch_sub(1, Ordering::SeqCst) == 1 {
                            // The last connection closed: give memory that a
                            // burst of connection threads freed back to the system.
                            crate::util::process::trim_heap();
                        }
                    });
                if let Err(e) = spawned {
                    frontend.open_connections.fetch_sub(1, Ordering::SeqCst);
                    log::error!("cannot start a connection thread: {e}");
                }
            }
            Err(e) => {
                log::warn!("accept failed: {e}; retrying in {backoff:?}");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

fn serve_connection(mut tcp: TcpStream, frontend: &Frontend) {
    let _ = tcp.set_nodelay(true);
    let _ = tcp.set_read_timeout(Some(HEAD_TIMEOUT));
    let (head, buffered) = match read_head(&mut tcp) {
        Ok(Some(v)) => v,
        Ok(None) => return,
        Err(HeadError::TooLarge) => {
            let _ = tcp.write_all(
                b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\ncontent-length: 51\r\nconnection: close\r\n\r\n{\"detail\":\"Request header fields are too large.\"}\n",
            );
            return;
        }
        Err(HeadError::Io) => return,
    };
    let path = head.target.split('?').next().unwrap_or("");
    if head.is_websocket_upgrade() && path.starts_with("/sockets/") {
        let body_start = buffered
            .len()
            .min(head_len(&buffered).unwrap_or(buffered.len()));
        let leftover = buffered[body_start..].to_vec();
        let _ = tcp.set_read_timeout(None);
        (frontend.upgrade)(tcp, head, leftover);
        return;
    }
    relay(tcp, &buffered, frontend);
}

enum HeadError {
    TooLarge,
    Io,
}

/// Index just past `\r\n\r\n`, if present.
fn head_len(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// Reads until the end of the request head. `Ok(None)` when the client
/// closed without sending anything.
fn read_head(tcp: &mut TcpStream) -> Result<Option<(RequestHead, Vec<u8>)>, HeadError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(end) = head_len(&buf) {
            break end;
        }
        if buf.len() > MAX_HEAD_BYTES {
            return Err(HeadError::TooLarge);
        }
        match tcp.read(&mut chunk) {
            Ok(0) if buf.is_empty() => return Ok(None),
            Ok(0) => return Err(HeadError::Io),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(HeadError::Io),
        }
    };
    let text = String::from_utf8_lossy(&buf[..end]);
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or("");
    let mut parts = request_line.split(' ');
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok(Some((
        RequestHead {
            method,
            target,
            headers,
        },
        buf,
    )))
}

/// Copies bytes both ways between the client and tiny_http until either
/// side closes, or the connection has been idle (no request in flight) for
/// [`IDLE_TIMEOUT`].
fn relay(tcp: TcpStream, buffered: &[u8], frontend: &Frontend) {
    let mut inner = match UnixStream::connect(&frontend.internal) {
        Ok(s) => s,
        Err(e) => {
            log::error!("cannot reach the internal HTTP server: {e}");
            return;
        }
    };
    if inner.write_all(buffered).is_err() {
        return;
    }
    let (Ok(mut tcp_out), Ok(mut inner_in)) = (tcp.try_clone(), inner.try_clone()) else {
        return;
    };
    let activity = Arc::new(Activity::default());
    activity.request();
    let back = {
        let activity = Arc::clone(&activity);
        std::thread::Builder::new()
            .name("conn-relay".into())
            .spawn(move || {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    match inner_in.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            activity.response();
                            if tcp_out.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = tcp_out.shutdown(Shutdown::Both);
            })
    };
    let Ok(back) = back else { return };
    let mut tcp_in = tcp;
    let _ = tcp_in.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match tcp_in.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                activity.request();
                if inner.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if frontend.stopping.load(Ordering::SeqCst) && !activity.in_flight() {
                    break;
                }
                if !activity.in_flight() && activity.idle_for() > IDLE_TIMEOUT {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let _ = inner.shutdown(Shutdown::Write);
    let _ = back.join();
}

/// When bytes last went each way; a request is in flight while the client
/// has sent more recently than the server answered.
struct Activity {
    epoch: Instant,
    last_request: AtomicU64,
    last_response: AtomicU64,
}

impl Default for Activity {
    fn default() -> Self {
        Activity {
            epoch: Instant::now(),
            last_request: AtomicU64::new(0),
            last_response: AtomicU64::new(0),
        }
    }
}

impl Activity {
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64 + 1
    }
    fn request(&self) {
        self.last_request.store(self.now(), Ordering::SeqCst);
    }
    fn response(&self) {
        self.last_response.store(self.now(), Ordering::SeqCst);
    }
    fn in_flight(&self) -> bool {
        self.last_request.load(Ordering::SeqCst) > self.last_response.load(Ordering::SeqCst)
    }
    fn idle_for(&self) -> Duration {
        let last = self
            .last_request
            .load(Ordering::SeqCst)
            .max(self.last_response.load(Ordering::SeqCst));
        Duration::from_micros(self.now().saturating_sub(last))
    }
}
