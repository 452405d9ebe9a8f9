//! The agent server: `openhands-sync serve`.
//!
//! # Threads
//! - **accept**: owns the TCP listener; each accepted connection gets a
//!   **conn** thread ([`listener`]) that reads its requests ([`http1`]),
//!   runs their handlers and writes the answers, so a long
//!   `execute_bash_command` only ever holds its own connection. WebSocket
//!   upgrades stay on that thread too ([`ws`]). There is no global lock
//!   around request handling: handlers share [`App`] and lock only the piece
//!   of state they touch, briefly.
//! - `start_bash_command` gives each command a thread of its own;
//!   `execute_bash_command` runs it on the request's thread ([`crate::bash`]).
//!
//! # Shutdown
//! [`ServerHandle::shutdown`] (called on SIGINT/SIGTERM by the binary) stops
//! accepting, lets in-flight requests finish (up to [`DRAIN_TIMEOUT`]), then
//! kills every child process group and returns from [`Server::run`].

pub mod auth;
pub mod config;
pub mod conversations;
pub mod http;
pub mod http1;
pub mod listener;
pub mod multipart;
pub mod routes;
pub mod secrets;
pub mod ws;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

pub use auth::SessionKeys;
pub use config::ServerConfig;
use http::{split_target, ApiError, ApiRequest, ApiResponse};
use http1::{Connection, Framing, RequestHead};
use listener::Frontend;

use crate::bash::BashService;
use crate::util::guardian::Guardian;
use crate::util::process::ProcessGroups;
use crate::{Error, Result};
use conversations::ConversationService;

/// How long shutdown waits for in-flight requests.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// The slowest body upload we wait for, beyond the request timeout.
const MIN_UPLOAD_BYTES_PER_SEC: u64 = 100 * 1024;

/// State shared by all handlers.
pub struct App {
    /// The settings the server runs with.
    pub config: ServerConfig,
    /// Workspace commands.
    pub bash: Arc<BashService>,
    /// Every process group this server started.
    pub groups: Arc<ProcessGroups>,
    /// The conversations.
    pub conversations: Arc<ConversationService>,
    pub(crate) started: Instant,
    last_request: AtomicU64,
    in_flight: AtomicUsize,
}

impl App {
    fn touch(&self) {
        self.last_request
            .store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// Seconds since the last request.
    pub fn idle_seconds(&self) -> f64 {
        let last = self.last_request.load(Ordering::Relaxed);
        (self.started.elapsed().as_millis() as u64).saturating_sub(last) as f64 / 1000.0
    }
}

/// A bound server, ready to [`run`](Server::run).
pub struct Server {
    app: Arc<App>,
    listener: TcpListener,
    addr: SocketAddr,
    stopping: Arc<AtomicBool>,
    stop_tx: Sender<()>,
    stop_rx: Receiver<()>,
}

/// Stops a running [`Server`] from another thread.
#[derive(Clone)]
pub struct ServerHandle {
    addr: SocketAddr,
    stopping: Arc<AtomicBool>,
    stop_tx: Sender<()>,
}

impl ServerHandle {
    /// Starts a graceful shutdown; [`Server::run`] returns once it is done.
    pub fn shutdown(&self) {
        if !self.stopping.swap(true, Ordering::SeqCst) {
            // Wake `run`, then the accept loop.
            let _ = self.stop_tx.try_send(());
            let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        }
    }
}

impl Server {
    /// Binds the listener and prepares state directories.
    pub fn bind(config: ServerConfig) -> Result<Server> {
        std::fs::create_dir_all(&config.state_dir)
            .map_err(|e| Error::io(format!("creating {}", config.state_dir.display()), e))?;
        let listener = TcpListener::bind((config.host.as_str(), config.port))
            .map_err(|e| Error::io(format!("binding {}:{}", config.host, config.port), e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io("reading the bound address", e))?;
        let (stop_tx, stop_rx) = crossbeam_channel::bounded(1);
        let guardian = Some(Arc::new(Guardian::new()));
        let groups = Arc::new(ProcessGroups::guarded_by(guardian.clone()));
        let bash = BashService::new(&config.bash_events_dir(), None, Arc::clone(&groups));
        let sealer = config
            .secret_key
            .as_ref()
            .map(|k| k.expose().to_string())
            .or_else(|| config.session_keys.first().map(String::from))
            .and_then(|k: String| secrets::SecretBox::new(&k));
        if sealer.is_none() {
            log::info!("no OH_SECRET_KEY or session key: credentials will not be persisted");
        }
        let conversations = ConversationService::open(
            &config.conversations_dir(),
            config.durable,
            crate::tool::terminal::NO_CHANGE_TIMEOUT,
            sealer,
            guardian,
        )?;
        let app = Arc::new(App {
            config,
            bash,
            groups,
            conversations,
            started: Instant::now(),
            last_request: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        });
        Ok(Server {
            app,
            listener,
            addr,
            stopping: Arc::new(AtomicBool::new(false)),
            stop_tx,
            stop_rx,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// A handle to stop the server.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            addr: self.addr,
            stopping: Arc::clone(&self.stopping),
            stop_tx: self.stop_tx.clone(),
        }
    }

    /// Serves until [`ServerHandle::shutdown`], then drains and cleans up.
    pub fn run(self) -> Result<()> {
        let frontend = Arc::new(Frontend {
            app: Arc::clone(&self.app),
            stopping: AtomicBool::new(false),
            open_connections: AtomicUsize::new(0),
        });
        let accept = {
            let fe = Arc::clone(&frontend);
            let listener = self
                .listener
                .try_clone()
                .map_err(|e| Error::io("cloning the listener", e))?;
            std::thread::Builder::new()
                .name("accept".into())
                .spawn(move || listener::accept_loop(listener, fe))
                .map_err(|e| Error::io("spawning the accept thread", e))?
        };
        log::info!("openhands-sync listening on http://{}", self.addr);
        // Wait for `ServerHandle::shutdown` (it may already have been called).
        let _ = self.stop_rx.recv();
        log::info!("shutting down: no new connections, draining requests");
        frontend.stopping.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        let _ = accept.join();
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        while self.app.in_flight.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.app.bash.shutdown();
        self.app.conversations.shutdown();
        let killed = self.app.groups.kill_all();
        if killed > 0 {
            log::info!("killed {killed} child process group(s)");
        }
        log::info!("server stopped");
        Ok(())
    }
}

/// Reads the body of one request, authorises, routes and answers it; never
/// panics. Returns whether the connection can carry another request.
fn serve_request(
    app: &App,
    conn: &mut Connection,
    head: RequestHead,
    stopping: &AtomicBool,
) -> bool {
    app.in_flight.fetch_add(1, Ordering::SeqCst);
    app.touch();
    let started = Instant::now();
    let (response, reusable) = match catch_unwind(AssertUnwindSafe(|| answer(app, conn, &head))) {
        Ok(r) => r,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "handler panicked".into());
            (ApiError::internal(what).into_response(), false)
        }
    };
    let path = head.target.split('?').next().unwrap_or("");
    log::info!(
        "{} {path} {} {:.1}ms",
        head.method,
        response.status,
        started.elapsed().as_secs_f64() * 1000.0
    );
    let keep_alive = reusable && head.keep_alive() && !stopping.load(Ordering::SeqCst);
    let head_only = head.method.eq_ignore_ascii_case("HEAD");
    let written = conn
        .write_response(&response, keep_alive, head_only)
        .is_ok();
    app.in_flight.fetch_sub(1, Ordering::SeqCst);
    written && keep_alive
}

/// The response, and whether the request was read to its end (so the
/// connection can carry another one).
fn answer(app: &App, conn: &mut Connection, head: &RequestHead) -> (ApiResponse, bool) {
    let framing = match http1::framing(head) {
        Ok(f) => f,
        Err(e) => return (refusal(&e), false),
    };
    let no_body = framing == Framing::Length(0);
    let (segments, query) = split_target(&head.target);
    if !routes::is_public(&segments)
        && !app
            .config
            .session_keys
            .accepts(head.header("x-session-api-key"))
    {
        return (ApiError::Unauthorized.into_response(), no_body);
    }
    let limit = routes::body_limit(app, &segments);
    let expected = match framing {
        Framing::Length(n) => n.min(limit),
        Framing::Chunked => limit,
    };
    let deadline = Instant::now()
        + app.config.request_timeout
        + Duration::from_secs(expected / MIN_UPLOAD_BYTES_PER_SEC);
    if !no_body {
        conn.continue_if_expected(head);
    }
    let body = match conn.read_body(framing, limit, deadline) {
        Ok(body) => body,
        Err(e) => return (refusal(&e), false),
    };
    let req = ApiRequest {
        method: head.method.to_ascii_uppercase(),
        segments,
        query,
        headers: head.headers.iter().cloned().collect(),
        body,
    };
    (
        routes::route(app, &req).unwrap_or_else(ApiError::into_response),
        true,
    )
}

/// The answer to a request that could not be read.
fn refusal(e: &http1::ReadError) -> ApiResponse {
    listener::error_response(e).unwrap_or_else(|| {
        ApiError::BadRequest("the request could not be read".into()).into_response()
    })
}
