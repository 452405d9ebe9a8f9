//! The TCP front door. We own the listening socket and give every accepted
//! connection its own thread, which reads requests one after another
//! ([`http1`](super::http1)) and answers each itself, or hands the socket to
//! the WebSocket code when a request asks for an upgrade to `/sockets/...`.
//!
//! Owning `accept` also means one failing `accept` (e.g. out of file
//! descriptors) is logged and retried instead of ending the server, and a
//! flood of connections beyond [`ServerConfig::max_connections`] is turned
//! away with 503 instead of one thread each.
//!
//! [`ServerConfig::max_connections`]: super::ServerConfig::max_connections

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::http::{ApiError, ApiResponse};
use super::http1::{Connection, ReadError};
use super::App;

/// How long an idle keep-alive connection stays open.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// Shared state of the accept loop and its connection threads.
pub struct Frontend {
    pub(crate) app: Arc<App>,
    pub(crate) stopping: AtomicBool,
    pub(crate) open_connections: AtomicUsize,
}

/// Accepts connections until the frontend is stopping.
pub fn accept_loop(listener: TcpListener, frontend: Arc<Frontend>) {
    let mut backoff = Duration::from_millis(5);
    for stream in listener.incoming() {
        if frontend.stopping.load(Ordering::SeqCst) {
            break;
        }
        match stream {
            Ok(tcp) => {
                backoff = Duration::from_millis(5);
                let open = frontend.open_connections.fetch_add(1, Ordering::SeqCst);
                if open >= frontend.app.config.max_connections {
                    frontend.open_connections.fetch_sub(1, Ordering::SeqCst);
                    turn_away(tcp);
                    continue;
                }
                let fe = Arc::clone(&frontend);
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

/// Answers 503 on the accept thread without reading the request.
fn turn_away(mut tcp: TcpStream) {
    log::warn!("too many open connections; turning one away");
    let _ = tcp.set_write_timeout(Some(Duration::from_millis(200)));
    let body = br#"{"detail":"Too many open connections; try again shortly."}"#;
    let _ = write!(
        tcp,
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = tcp.write_all(body);
}

fn serve_connection(tcp: TcpStream, frontend: &Frontend) {
    let app = &frontend.app;
    let timeout = app.config.request_timeout;
    let mut conn = Connection::new(tcp);
    let mut idle = timeout;
    loop {
        let head = match conn.read_head(idle, timeout, &frontend.stopping) {
            Ok(head) => head,
            Err(e) => {
                if let Some(response) = error_response(&e) {
                    let _ = conn.write_response(&response, false, false);
                    conn.linger_close();
                }
                return;
            }
        };
        let path = head.target.split('?').next().unwrap_or("");
        if head.is_websocket_upgrade() && path.starts_with("/sockets/") {
            let (tcp, leftover) = conn.into_parts();
            let _ = tcp.set_read_timeout(None);
            super::ws::handle(app, tcp, head, leftover);
            return;
        }
        if !super::serve_request(app, &mut conn, head, &frontend.stopping) {
            conn.linger_close();
            return;
        }
        idle = IDLE_TIMEOUT;
    }
}

/// What the client hears when its request could not be read.
pub(crate) fn error_response(e: &ReadError) -> Option<ApiResponse> {
    let error = match e {
        ReadError::Closed | ReadError::Io => return None,
        ReadError::BadRequest(why) => ApiError::BadRequest(format!("Invalid HTTP request: {why}")),
        ReadError::HeadTooLarge => ApiError::HeaderTooLarge,
        ReadError::TooLarge(limit) => ApiError::PayloadTooLarge(*limit),
        ReadError::Timeout => ApiError::RequestTimeout,
    };
    Some(error.into_response())
}
