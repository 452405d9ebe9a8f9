//! The event socket, `GET /sockets/events/{conversation_id}`.
//!
//! Handshake as in the reference: the key comes in the query
//! (`session_api_key`), the `X-Session-API-Key` header, or the first message
//! `{"type": "auth", "session_api_key": ...}` within 10 s (bad key: close
//! 4001); an unknown conversation closes with 4004; more than 50 sockets on one
//! conversation with 1013. Then the first frame is a `full_state` update,
//! followed by stored events if `resend_mode=all` (or `since` with
//! `after_timestamp`), then every new event as one text frame, in order.
//!
//! Two threads per socket. The connection thread is the only writer: it waits
//! on the subscription queue, on the reader's messages and on a ping timer.
//! The reader thread owns a tungstenite `WebSocket` over a clone of the socket
//! whose writes (pongs, close replies) are handed to the writer as whole
//! frames. The subscription queue is bounded ([`QUEUE_CAPACITY`]): a socket
//! too slow to keep up is dropped (close 1013) instead of slowing the agent or
//! other sockets, and the client resynchronises from `events/search`. Writes
//! time out after [`WRITE_TIMEOUT`]; a socket that answers nothing for two
//! ping intervals is closed.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver, Sender};
use serde_json::Value;
use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tungstenite::protocol::frame::{CloseFrame, Frame, Utf8Bytes};
use tungstenite::protocol::{Role, WebSocket, WebSocketConfig};
use tungstenite::Message as WsMessage;

use super::http::split_target;
use super::http1::RequestHead;
use super::App;
use crate::conversation::Published;
use crate::wire::{Event, EventMeta, Message, Role as MsgRole, ServerErrorEvent, Source};

/// Events a socket may fall behind by before it is dropped.
pub const QUEUE_CAPACITY: usize = 4096;
/// Sockets per conversation.
pub const MAX_SUBSCRIBERS: usize = 50;
/// How long one write may block.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often an idle socket is pinged.
pub const PING_INTERVAL: Duration = Duration::from_secs(20);
const AUTH_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// What the reader tells the writer.
enum Control {
    /// Bytes tungstenite wants on the wire (pong, close reply).
    Raw(Vec<u8>),
    /// An event for this socket only (errors about its messages).
    Event(Box<Event>),
    /// The peer went away.
    Closed,
}

/// The read side: reads the socket; writes go to the writer as whole frames.
struct ReadHalf {
    tcp: TcpStream,
    pending: Vec<u8>,
    out: Sender<Control>,
}

impl Read for ReadHalf {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.tcp.read(buf)
    }
}

impl Write for ReadHalf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            let bytes = std::mem::take(&mut self.pending);
            let _ = self.out.send(Control::Raw(bytes));
        }
        Ok(())
    }
}

fn frame_bytes(frame: Frame) -> Vec<u8> {
    let mut buf = Vec::with_capacity(frame.len());
    let _ = frame.format(&mut buf);
    buf
}

fn text_frame(text: Vec<u8>) -> Vec<u8> {
    frame_bytes(Frame::message(text, OpCode::Data(Data::Text), true))
}

fn close_frame(code: u16, reason: &'static str) -> Vec<u8> {
    frame_bytes(Frame::close(Some(CloseFrame {
        code: CloseCode::from(code),
        reason: Utf8Bytes::from_static(reason),
    })))
}

fn http_error(tcp: &mut TcpStream, status: &str, detail: &str) {
    let body = serde_json::json!({ "detail": detail }).to_string();
    let _ = write!(
        tcp,
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// Serves one upgrade request on its connection thread.
pub fn handle(app: &Arc<App>, mut tcp: TcpStream, head: RequestHead, leftover: Vec<u8>) {
    let (segments, query) = split_target(&head.target);
    let q = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let conversation_id = match segments
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["sockets", "events", id] => id.to_string(),
        _ => return http_error(&mut tcp, "404 Not Found", "Not Found"),
    };
    let Some(key) = head.header("sec-websocket-key") else {
        return http_error(&mut tcp, "400 Bad Request", "Missing Sec-WebSocket-Key");
    };
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    if tcp.write_all(response.as_bytes()).is_err() {
        return;
    }
    let _ = tcp.set_nodelay(true);
    let _ = tcp.set_write_timeout(Some(WRITE_TIMEOUT));
    let (ctl_tx, ctl_rx) = crossbeam_channel::unbounded();
    let Ok(read_tcp) = tcp.try_clone() else {
        return;
    };
    let config = WebSocketConfig::default().max_message_size(Some(MAX_MESSAGE_BYTES));
    let mut reader = WebSocket::from_partially_read(
        ReadHalf {
            tcp: read_tcp,
            pending: Vec::new(),
            out: ctl_tx.clone(),
        },
        leftover,
        Role::Server,
        Some(config),
    );
    let keys = &app.config.session_keys;
    let mut authed = !keys.enabled()
        || keys.accepts(q("session_api_key").as_deref())
        || keys.accepts(head.header("x-session-api-key"));
    if !authed && q("session_api_key").is_none() && head.header("x-session-api-key").is_none() {
        authed = first_message_auth(&mut reader, &tcp, app);
    }
    flush_control(&mut tcp, &ctl_rx);
    if !authed {
        let _ = tcp.write_all(&close_frame(4001, "Authentication failed"));
        return;
    }
    let entry = app.conversations.get(&conversation_id);
    let conv = entry
        .as_ref()
        .and_then(|e| app.conversations.conversation(e).ok());
    let (Some(entry), Some(conv)) = (entry, conv) else {
        let _ = tcp.write_all(&close_frame(4004, "Conversation not found"));
        return;
    };
    if conv.subscriber_count() >= MAX_SUBSCRIBERS {
        let _ = tcp.write_all(&close_frame(
            1013,
            "Too many connections for this conversation",
        ));
        return;
    }
    let since = match (q("resend_mode").as_deref(), q("resend_all").as_deref()) {
        (Some("all"), _) | (_, Some("true" | "True" | "1")) => Some(String::new()),
        (Some("since"), _) => q("after_timestamp").map(|t| t.trim_end_matches('Z').to_string()),
        _ => None,
    };
    let subscription = conv.subscribe_with_state(Some(QUEUE_CAPACITY), |e| {
        since.as_deref().is_some_and(|t| e.timestamp() >= t)
    });
    let last_seen = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let reader_thread = {
        let (app, entry, last_seen) = (Arc::clone(app), Arc::clone(&entry), Arc::clone(&last_seen));
        std::thread::Builder::new()
            .name("ws-reader".into())
            .spawn(move || read_loop(&mut reader, &app, &entry, &ctl_tx, &last_seen, started))
    };
    let Ok(reader_thread) = reader_thread else {
        conv.unsubscribe(subscription.id);
        return;
    };
    let mut writer = Writer { tcp, ok: true };
    writer.event(&subscription.first);
    for e in &subscription.replay {
        writer.event(e);
    }
    write_loop(
        &mut writer,
        &subscription.events,
        &ctl_rx,
        &last_seen,
        started,
    );
    conv.unsubscribe(subscription.id);
    let _ = writer.tcp.shutdown(Shutdown::Both);
    let _ = reader_thread.join();
}

fn flush_control(tcp: &mut TcpStream, ctl: &Receiver<Control>) {
    while let Ok(Control::Raw(bytes)) = ctl.try_recv() {
        let _ = tcp.write_all(&bytes);
    }
}

/// Waits for `{"type": "auth", "session_api_key": ...}` as the first message.
fn first_message_auth(reader: &mut WebSocket<ReadHalf>, tcp: &TcpStream, app: &App) -> bool {
    let _ = tcp.set_read_timeout(Some(AUTH_TIMEOUT));
    let deadline = Instant::now() + AUTH_TIMEOUT;
    let result = loop {
        if Instant::now() >= deadline {
            break false;
        }
        match reader.read() {
            Ok(WsMessage::Text(text)) => {
                let v: Value = serde_json::from_str(text.as_str()).unwrap_or(Value::Null);
                let key = (v["type"] == "auth")
                    .then(|| v["session_api_key"].as_str())
                    .flatten();
                break app.config.session_keys.accepts(key);
            }
            Ok(WsMessage::Ping(_) | WsMessage::Pong(_)) => continue,
            _ => break false,
        }
    };
    let _ = tcp.set_read_timeout(None);
    result
}

fn read_loop(
    reader: &mut WebSocket<ReadHalf>,
    app: &App,
    entry: &Arc<super::conversations::Entry>,
    ctl: &Sender<Control>,
    last_seen: &AtomicU64,
    started: Instant,
) {
    loop {
        let msg = reader.read();
        last_seen.store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
        match msg {
            Ok(WsMessage::Text(text)) => {
                if let Some(error) = handle_client_text(app, entry, text.as_str()) {
                    let _ = ctl.send(Control::Event(Box::new(error)));
                }
            }
            Ok(WsMessage::Close(_)) | Err(_) => {
                let _ = reader.flush();
                let _ = ctl.send(Control::Closed);
                return;
            }
            Ok(_) => {}
        }
    }
}

/// A client text frame: a redundant auth message (ignored) or a user message
/// that is stored and run, as in the reference. Errors come back as events.
fn handle_client_text(
    app: &App,
    entry: &Arc<super::conversations::Entry>,
    text: &str,
) -> Option<Event> {
    let error = |code: &str, detail: String| {
        Some(Event::ServerError(ServerErrorEvent {
            meta: EventMeta::new(Source::Environment),
            code: code.into(),
            detail,
            extra: Default::default(),
        }))
    };
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return error("ValidationError", format!("invalid JSON: {e}")),
    };
    if value.get("type").and_then(Value::as_str) == Some("auth") {
        return None;
    }
    let message: Message = match serde_json::from_value(value) {
        Ok(m) => m,
        Err(e) => return error("ValidationError", format!("not a message: {e}")),
    };
    if message.role != MsgRole::User {
        return error("ValueError", "only user messages can be sent".into());
    }
    match app.conversations.send_message(entry, message, true) {
        Ok(_) => None,
        Err(e) => error("ServerError", e.to_string()),
    }
}

struct Writer {
    tcp: TcpStream,
    ok: bool,
}

impl Writer {
    fn raw(&mut self, bytes: &[u8]) {
        if self.ok && self.tcp.write_all(bytes).is_err() {
            self.ok = false;
        }
    }

    fn event(&mut self, event: &Event) {
        match serde_json::to_vec(event) {
            Ok(json) => self.raw(&text_frame(json)),
            Err(e) => log::warn!("cannot serialise event {}: {e}", event.id()),
        }
    }
}

fn write_loop(
    w: &mut Writer,
    events: &Receiver<Arc<Published>>,
    ctl: &Receiver<Control>,
    last_seen: &AtomicU64,
    started: Instant,
) {
    let mut pinged_at: Option<u64> = None;
    while w.ok {
        select! {
            recv(events) -> e => match e {
                Ok(e) => w.raw(&text_frame(e.json().to_vec())),
                Err(_) => {
                    // Dropped for falling behind, or the conversation is gone.
                    w.raw(&close_frame(1013, "Event queue overflow; reconnect and resync"));
                    return;
                }
            },
            recv(ctl) -> c => match c {
                Ok(Control::Raw(bytes)) => w.raw(&bytes),
                Ok(Control::Event(e)) => w.event(&e),
                Ok(Control::Closed) | Err(_) => return,
            },
            default(PING_INTERVAL) => {
                let now = started.elapsed().as_millis() as u64;
                let seen = last_seen.load(Ordering::Relaxed);
                if let Some(p) = pinged_at {
                    if seen < p {
                        log::info!("closing an unresponsive event socket");
                        return;
                    }
                }
                pinged_at = Some(now);
                w.raw(&frame_bytes(Frame::ping(Vec::<u8>::new())));
            }
        }
    }
}
