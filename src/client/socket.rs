//! The client side of the event socket: one reader thread per conversation
//! that keeps a WebSocket open (reconnecting with capped exponential backoff),
//! and one dispatcher thread that owns the event cache and calls callbacks.
//!
//! Exactly once, in order: every event goes through the dispatcher, which
//! drops ids it has already seen. After each (re)connection the reader fetches
//! the stored events over REST right after the server's first `full_state`
//! frame and hands them over before any newer live frame, so events missed
//! while disconnected are delivered, in log order, before newer ones.
//! Close codes 4001 (authentication) and 4004 (unknown conversation) are fatal.
//!
//! Half-open connections (a peer or middlebox that vanished without a FIN)
//! are noticed by the reader itself: when the socket has been silent for one
//! keepalive interval it sends a ping, and a connection that stays silent for
//! two intervals is dropped and reopened.

use std::collections::HashSet;
use std::io;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use serde_json::{Map, Value};

use super::http::HttpClient;
use crate::wire::{Event, Page};
use crate::{Error, Result};

/// A callback that sees every event, on the dispatcher thread.
pub type EventCallback = Box<dyn FnMut(&Event) + Send + 'static>;

const BACKOFF_START: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Default silence before the reader pings; twice this and it reconnects.
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(10);

/// What the client knows about a remote conversation.
#[derive(Default)]
pub struct Cache {
    /// Events in delivery order.
    pub events: Vec<Arc<Event>>,
    ids: HashSet<String>,
    /// The conversation state: `full_state` merged, single keys overwritten.
    pub state: Map<String, Value>,
    /// Bumped on every `full_state` frame as it arrives (before callbacks
    /// get it); `run()` waits for one after its POST.
    pub full_states: u64,
    /// The status of the latest `full_state` frame.
    pub last_full_status: Option<String>,
    /// Set when the socket gave up for good.
    pub fatal: Option<(u16, String)>,
}

impl Cache {
    /// Merges an event; false if it was already there.
    fn add(&mut self, event: &Arc<Event>) -> bool {
        let id = event.id().to_string();
        if !id.is_empty() && !self.ids.insert(id) {
            return false;
        }
        if let Event::StateUpdate(u) = event.as_ref() {
            if u.is_full_state() {
                if let Value::Object(m) = &u.value {
                    for (k, v) in m {
                        self.state.insert(k.clone(), v.clone());
                    }
                }
            } else {
                self.state.insert(u.key.clone(), u.value.clone());
            }
        }
        self.events.push(Arc::clone(event));
        true
    }
}

/// Shared between the conversation handle and its threads.
pub struct Shared {
    /// The cache.
    pub cache: Mutex<Cache>,
    /// Signalled whenever the cache changes.
    pub changed: std::sync::Condvar,
}

impl Shared {
    /// A new, empty share.
    pub fn new() -> Arc<Self> {
        Arc::new(Shared {
            cache: Mutex::new(Cache::default()),
            changed: std::sync::Condvar::new(),
        })
    }

    /// Notes a frame as it arrives, before callbacks see it: `run()` waits on
    /// this, so a slow callback never delays it.
    fn note_frame(&self, event: &Event) {
        if let Some(u) = event.as_state_update().filter(|u| u.is_full_state()) {
            let status = u
                .value
                .get("execution_status")
                .and_then(Value::as_str)
                .map(String::from);
            self.with(|c| {
                c.full_states += 1;
                c.last_full_status = status;
            });
            self.changed.notify_all();
        }
    }

    /// Runs `f` on the cache.
    pub fn with<T>(&self, f: impl FnOnce(&mut Cache) -> T) -> T {
        let mut c = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut c)
    }
}

/// Messages to the dispatcher.
enum Delivery {
    Event(Arc<Event>),
    Fatal(u16, String),
}

/// The running socket threads of one conversation.
pub struct EventSocket {
    stop: Arc<AtomicBool>,
    stream: Arc<Mutex<Option<TcpStream>>>,
    reader: Option<JoinHandle<()>>,
    dispatcher: Option<JoinHandle<()>>,
}

impl EventSocket {
    /// Starts the threads; events (from `initial` first) go into `shared` and
    /// to `callbacks`. Returns once the first connection is up (or failed).
    pub fn start(
        http: HttpClient,
        conversation_id: String,
        shared: Arc<Shared>,
        callbacks: Vec<EventCallback>,
        initial: Vec<Event>,
        keepalive: Duration,
    ) -> Result<EventSocket> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let resume_from = initial.last().map(|e| e.id().to_string());
        for e in initial {
            let _ = tx.send(Delivery::Event(Arc::new(e)));
        }
        let dispatcher = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("events-dispatch".into())
                .spawn(move || dispatch(rx, &shared, callbacks))
                .map_err(|e| Error::io("spawning the event dispatcher", e))?
        };
        let stop = Arc::new(AtomicBool::new(false));
        let stream = Arc::new(Mutex::new(None));
        let (ready_tx, ready_rx) = crossbeam_channel::bounded(1);
        let reader = Reader {
            http,
            id: conversation_id,
            shared: Arc::clone(&shared),
            tx,
            stop: Arc::clone(&stop),
            stream: Arc::clone(&stream),
            keepalive: keepalive.max(Duration::from_millis(10)),
            resume_from: Mutex::new(resume_from),
        };
        let reader = std::thread::Builder::new()
            .name("events-socket".into())
            .spawn(move || reader.read_forever(ready_tx))
            .map_err(|e| Error::io("spawning the event socket reader", e))?;
        let socket = EventSocket {
            stop,
            stream,
            reader: Some(reader),
            dispatcher: Some(dispatcher),
        };
        match ready_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Ok(())) => Ok(socket),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::Timeout(
                "the event socket did not connect within 30 s".into(),
            )),
        }
    }

    /// Cuts the current connection (tests; the reader reconnects).
    pub fn drop_connection(&self) {
        if let Some(s) = self
            .stream
            .lock()
            .ok()
            .and_then(|s| s.as_ref().and_then(|t| t.try_clone().ok()))
        {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Stops both threads; callbacks still get what was already received.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.drop_connection();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        if let Some(d) = self.dispatcher.take() {
            let _ = d.join();
        }
    }
}

impl Drop for EventSocket {
    fn drop(&mut self) {
        self.stop();
    }
}

fn dispatch(rx: Receiver<Delivery>, shared: &Shared, mut callbacks: Vec<EventCallback>) {
    for d in rx {
        match d {
            Delivery::Event(e) => {
                let fresh = shared.with(|c| c.add(&e));
                shared.changed.notify_all();
                if fresh {
                    for cb in callbacks.iter_mut() {
                        cb(&e);
                    }
                }
            }
            Delivery::Fatal(code, reason) => {
                shared.with(|c| c.fatal = Some((code, reason)));
                shared.changed.notify_all();
            }
        }
    }
}

/// What the socket reader thread works with.
struct Reader {
    http: HttpClient,
    id: String,
    shared: Arc<Shared>,
    tx: Sender<Delivery>,
    stop: Arc<AtomicBool>,
    stream: Arc<Mutex<Option<TcpStream>>>,
    keepalive: Duration,
    /// The last event of the previous catch-up: the next one starts there
    /// (every stored event after it is newer), instead of at the beginning.
    resume_from: Mutex<Option<String>>,
}

impl Reader {
    /// Connects, reads, reconnects, until stopped or a fatal close.
    fn read_forever(&self, ready: Sender<Result<()>>) {
        let id = &self.id;
        let mut backoff = BACKOFF_START;
        let mut ready = Some(ready);
        while !self.stop.load(Ordering::SeqCst) {
            let mut connected = false;
            let outcome = self.session(&mut ready, &mut connected);
            if connected {
                // A connection that worked resets the backoff.
                backoff = BACKOFF_START;
            }
            match outcome {
                Ok(()) => {}
                Err(Error::Closed { code, reason }) if code == 4001 || code == 4004 => {
                    log::warn!("event socket of {id} closed for good ({code} {reason})");
                    let _ = self.tx.send(Delivery::Fatal(code, reason.clone()));
                    if let Some(r) = ready.take() {
                        let _ = r.send(Err(Error::Closed { code, reason }));
                    }
                    return;
                }
                Err(e) => log::debug!("event socket of {id}: {e}; reconnecting in {backoff:?}"),
            }
            if self.stop.load(Ordering::SeqCst) {
                break;
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// One connection: handshake, auth, first frame, catch-up, live frames.
    fn session(&self, ready: &mut Option<Sender<Result<()>>>, connected: &mut bool) -> Result<()> {
        let (http, id, shared, tx, stop, stream) = (
            &self.http,
            self.id.as_str(),
            &self.shared,
            &self.tx,
            &self.stop,
            &self.stream,
        );
        let base = http.base_url();
        let hostport = base.strip_prefix("http://").ok_or_else(|| {
            Error::InvalidInput(format!("event sockets need an http:// URL, got {base}"))
        })?;
        let addr = hostport
            .to_socket_addrs()
            .map_err(|e| Error::io(format!("resolving {hostport}"), e))?
            .next()
            .ok_or_else(|| Error::InvalidInput(format!("cannot resolve {hostport}")))?;
        let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
            .map_err(|e| Error::io(format!("connecting to {hostport}"), e))?;
        let _ = tcp.set_nodelay(true);
        let _ = tcp.set_read_timeout(Some(self.keepalive));
        if let Ok(mut s) = stream.lock() {
            *s = tcp.try_clone().ok();
        }
        let url = format!("ws://{hostport}/sockets/events/{id}");
        let (mut ws, _) = tungstenite::client(url.as_str(), tcp)
            .map_err(|e| Error::WebSocket(format!("handshake: {e}")))?;
        if let Some(key) = http.session_key() {
            let auth = serde_json::json!({"type": "auth", "session_api_key": key}).to_string();
            ws.send(tungstenite::Message::text(auth))
                .map_err(|e| Error::WebSocket(e.to_string()))?;
        }
        let mut synced = false;
        let mut last_heard = Instant::now();
        loop {
            if stop.load(Ordering::SeqCst) {
                let _ = ws.close(None);
                return Ok(());
            }
            let msg = match ws.read() {
                Ok(m) => m,
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    let silent = last_heard.elapsed();
                    if silent >= self.keepalive * 2 {
                        return Err(Error::WebSocket(format!(
                            "nothing heard for {silent:?}; the connection looks dead"
                        )));
                    }
                    // A failed ping shows up as an error on the next read.
                    let _ = ws.send(tungstenite::Message::Ping(Default::default()));
                    continue;
                }
                Err(e) => return Err(Error::WebSocket(e.to_string())),
            };
            last_heard = Instant::now();
            match msg {
                tungstenite::Message::Text(text) => {
                    let event: Event = match serde_json::from_str(text.as_str()) {
                        Ok(e) => e,
                        Err(e) => {
                            log::warn!("skipping an unreadable event frame: {e}");
                            continue;
                        }
                    };
                    let event = Arc::new(event);
                    shared.note_frame(&event);
                    let _ = tx.send(Delivery::Event(event));
                    if !synced {
                        *connected = true;
                        // The first frame says we are subscribed: catch up on the
                        // stored events since the last catch-up, then take live
                        // frames.
                        let from = self.resume_from.lock().ok().and_then(|r| r.clone());
                        let missed = fetch_events_from(http, id, from.as_deref())?;
                        if let Some(last) = missed.last() {
                            if let Ok(mut r) = self.resume_from.lock() {
                                *r = Some(last.id().to_string());
                            }
                        }
                        for e in missed {
                            let _ = tx.send(Delivery::Event(Arc::new(e)));
                        }
                        synced = true;
                        if let Some(r) = ready.take() {
                            let _ = r.send(Ok(()));
                        }
                    }
                }
                tungstenite::Message::Close(frame) => {
                    let (code, reason) = frame
                        .map(|f| (u16::from(f.code), f.reason.to_string()))
                        .unwrap_or((1005, String::new()));
                    return Err(Error::Closed { code, reason });
                }
                _ => {}
            }
        }
    }
}

/// Every stored event of a conversation, following pages.
pub fn fetch_all_events(http: &HttpClient, id: &str) -> Result<Vec<Event>> {
    fetch_events_from(http, id, None)
}

/// The stored events of a conversation from event `from` on (inclusive), or
/// all of them when `from` is `None` or unknown to the server.
pub fn fetch_events_from(http: &HttpClient, id: &str, from: Option<&str>) -> Result<Vec<Event>> {
    let mut out = Vec::new();
    let mut page_id: Option<String> = from.map(String::from);
    let path = format!("/api/conversations/{id}/events/search");
    loop {
        let mut query = vec![("limit", "100")];
        if let Some(p) = page_id.as_deref() {
            query.push(("page_id", p));
        }
        let page: Page<Event> = http.json("GET", &path, &query, None::<&()>)?;
        out.extend(page.items);
        match page.next_page_id {
            Some(next) if Some(&next) != page_id.as_ref() => page_id = Some(next),
            _ => return Ok(out),
        }
    }
}
