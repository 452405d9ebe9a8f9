//! The agent server: `openhands-sync serve`.
//!
//! # Threads
//! - **accept**: owns the TCP listener; each accepted connection gets a
//!   **conn** thread ([`listener`]). WebSocket upgrades stay on that thread;
//!   other connections are spliced to an internal tiny_http server on a
//!   private Unix socket (plus one **conn-relay** thread for the way back).
//! - **http-worker** threads take parsed requests from tiny_http and run
//!   handlers. The pool grows when every worker is busy (so a long
//!   `execute_bash_command` never blocks other requests) and shrinks when
//!   idle. There is no global lock around request handling: handlers share
//!   [`App`] and lock only the piece of state they touch, briefly.
//! - Commands started through `/api/bash` have their own threads ([`crate::bash`]).
//!
//! # Shutdown
//! [`ServerHandle::shutdown`] (called on SIGINT/SIGTERM by the binary) stops
//! accepting, lets in-flight requests finish (up to [`DRAIN_TIMEOUT`]), then
//! kills every child process group and returns from [`Server::run`].

pub mod auth;
pub mod config;
pub mod conversations;
pub mod http;
pub mod listener;
pub mod multipart;
pub mod routes;
pub mod secrets;
pub mod ws;

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use auth::SessionKeys;
pub use config::ServerConfig;
use http::{split_target, ApiError, ApiRequest, ApiResponse};
use listener::{Frontend, RequestHead};

use crate::bash::BashService;
use crate::util::guardian::Guardian;
use crate::util::process::ProcessGroups;
use crate::{Error, Result};
use conversations::ConversationService;

/// How long shutdown waits for in-flight requests.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
const MIN_WORKERS: usize = 2;
const MAX_WORKERS: usize = 1024;
const WORKER_IDLE_EXIT: Duration = Duration::from_secs(30);

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
    http: Arc<tiny_http::Server>,
    socket_dir: PathBuf,
    stopping: Arc<AtomicBool>,
}

/// Stops a running [`Server`] from another thread.
#[derive(Clone)]
pub struct ServerHandle {
    addr: SocketAddr,
    stopping: Arc<AtomicBool>,
}

impl ServerHandle {
    /// Starts a graceful shutdown; [`Server::run`] returns once it is done.
    pub fn shutdown(&self) {
        if !self.stopping.swap(true, Ordering::SeqCst) {
            // Wake the accept loop.
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
        let socket_dir = private_socket_dir()?;
        let http = tiny_http::Server::http_unix(&socket_dir.join("http.sock"))
            .map_err(|e| Error::Process(format!("starting the internal HTTP server: {e}")))?;
        let guardian = match Guardian::spawn() {
            Ok(g) => Some(Arc::new(g)),
            Err(e) => {
                log::warn!("{e}: commands may outlive a crash of this server");
                None
            }
        };
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
            http: Arc::new(http),
            socket_dir,
            stopping: Arc::new(AtomicBool::new(false)),
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
        }
    }

    /// Serves until [`ServerHandle::shutdown`], then drains and cleans up.
    pub fn run(self) -> Result<()> {
        let frontend = Arc::new(Frontend {
            internal: self.socket_dir.join("http.sock"),
            upgrade: {
                let app = Arc::clone(&self.app);
                Box::new(move |tcp: TcpStream, head: RequestHead, rest: Vec<u8>| {
                    ws::handle(&app, tcp, head, rest)
                })
            },
            stopping: AtomicBool::new(false),
            open_connections: AtomicUsize::new(0),
        });
        let pool = Arc::new(Pool {
            http: Arc::clone(&self.http),
            app: Arc::clone(&self.app),
            idle: AtomicUsize::new(0),
            total: AtomicUsize::new(0),
            stopping: Arc::clone(&self.stopping),
        });
        for _ in 0..MIN_WORKERS {
            pool.spawn_worker()?;
        }
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
        while !self.stopping.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
        }
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
        for _ in 0..pool.total.load(Ordering::SeqCst) {
            self.http.unblock();
        }
        let _ = std::fs::remove_dir_all(&self.socket_dir);
        log::info!("server stopped");
        Ok(())
    }
}

/// A fresh directory only we can enter, for the internal socket.
fn private_socket_dir() -> Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = std::env::temp_dir().join(format!(
        "openhands-sync-{}-{}",
        std::process::id(),
        &crate::util::id::uuid4_hex()[..8]
    ));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    Ok(dir)
}

/// Worker threads that take requests from tiny_http.
struct Pool {
    http: Arc<tiny_http::Server>,
    app: Arc<App>,
    idle: AtomicUsize,
    total: AtomicUsize,
    stopping: Arc<AtomicBool>,
}

impl Pool {
    fn spawn_worker(self: &Arc<Self>) -> Result<()> {
        self.total.fetch_add(1, Ordering::SeqCst);
        self.idle.fetch_add(1, Ordering::SeqCst);
        let pool = Arc::clone(self);
        std::thread::Builder::new()
            .name("http-worker".into())
            .spawn(move || pool.work())
            .map(|_| ())
            .map_err(|e| {
                self.total.fetch_sub(1, Ordering::SeqCst);
                self.idle.fetch_sub(1, Ordering::SeqCst);
                Error::io("spawning a worker thread", e)
            })
    }

    fn work(self: Arc<Self>) {
        loop {
            match self.http.recv_timeout(WORKER_IDLE_EXIT) {
                Ok(Some(request)) => {
                    if self.idle.fetch_sub(1, Ordering::SeqCst) == 1
                        && self.total.load(Ordering::SeqCst) < MAX_WORKERS
                    {
                        let _ = self.spawn_worker();
                    }
                    handle(&self.app, request);
                    self.idle.fetch_add(1, Ordering::SeqCst);
                }
                Ok(None) => {
                    if self.stopping.load(Ordering::SeqCst)
                        || self.total.load(Ordering::SeqCst) > MIN_WORKERS
                    {
                        break;
                    }
                }
                Err(_) => break,
            }
            if self.stopping.load(Ordering::SeqCst)
                && self.app.in_flight.load(Ordering::SeqCst) == 0
            {
                break;
            }
        }
        self.idle.fetch_sub(1, Ordering::SeqCst);
        self.total.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Reads, authorises, routes and answers one request; never panics.
fn handle(app: &App, mut request: tiny_http::Request) {
    app.in_flight.fetch_add(1, Ordering::SeqCst);
    app.touch();
    let started = Instant::now();
    let method = request.method().as_str().to_ascii_uppercase();
    let target = request.url().to_string();
    let response = match catch_unwind(AssertUnwindSafe(|| {
        answer(app, &mut request, &method, &target)
    })) {
        Ok(r) => r,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "handler panicked".into());
            ApiError::internal(what).into_response()
        }
    };
    let status = response.status;
    let path = target.split('?').next().unwrap_or("");
    log::info!(
        "{method} {path} {status} {:.1}ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
    let mut reply = tiny_http::Response::from_data(response.body).with_status_code(status);
    let content_type = ("Content-Type", response.content_type);
    for (k, v) in std::iter::once(content_type).chain(
        response
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    ) {
        match tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()) {
            Ok(h) => reply.add_header(h),
            Err(()) => log::warn!("dropping an invalid response header {k}"),
        }
    }
    let _ = request.respond(reply);
    app.in_flight.fetch_sub(1, Ordering::SeqCst);
}

fn answer(app: &App, request: &mut tiny_http::Request, method: &str, target: &str) -> ApiResponse {
    let (segments, query) = split_target(target);
    let headers = request
        .headers()
        .iter()
        .map(|h| {
            (
                h.field.as_str().as_str().to_ascii_lowercase(),
                h.value.as_str().to_string(),
            )
        })
        .collect();
    if !routes::is_public(&segments) {
        let key = request
            .headers()
            .iter()
            .find(|h| h.field.equiv("X-Session-API-Key"))
            .map(|h| h.value.as_str().to_string());
        if !app.config.session_keys.accepts(key.as_deref()) {
            return ApiError::Unauthorized.into_response();
        }
    }
    let limit = routes::body_limit(app, &segments);
    if request.body_length().is_some_and(|n| n as u64 > limit) {
        return ApiError::PayloadTooLarge(limit).into_response();
    }
    let mut body = Vec::new();
    if let Err(e) = request.as_reader().take(limit + 1).read_to_end(&mut body) {
        return ApiError::BadRequest(format!("could not read the request body: {e}"))
            .into_response();
    }
    if body.len() as u64 > limit {
        return ApiError::PayloadTooLarge(limit).into_response();
    }
    let req = ApiRequest {
        method: method.to_string(),
        segments,
        query,
        headers,
        body,
    };
    routes::route(app, &req).unwrap_or_else(ApiError::into_response)
}
