//! A loopback TCP proxy that breaks its WebSocket connections on demand, in
//! the ways networks do: a clean cut, a half-open connection (both ways go
//! silent, nothing is closed), and a reader that stops reading (the server's
//! writes pile up). Plain HTTP passes through untouched.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What happens to the WebSocket connections open at the time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Both sides see the connection close.
    Cut,
    /// Bytes are swallowed both ways; neither side is told anything.
    HalfOpen,
    /// Nothing more is read from the server; the client hears nothing.
    Stall,
}

const FLOWING: u8 = 0;
const SWALLOW: u8 = 1;
const STALLED: u8 = 2;

struct Link {
    client: TcpStream,
    server: TcpStream,
    mode: Arc<AtomicU8>,
}

pub struct FaultyProxy {
    pub url: String,
    links: Arc<Mutex<Vec<Link>>>,
    stop: Arc<AtomicBool>,
}

impl FaultyProxy {
    pub fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").to_string();
        let links = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (registry, halt) = (Arc::clone(&links), Arc::clone(&stop));
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if halt.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let mut first = [0u8; 14];
                let n = client.peek(&mut first).unwrap_or(0);
                let mode = Arc::new(AtomicU8::new(FLOWING));
                if first[..n].starts_with(b"GET /sockets/") {
                    registry.lock().unwrap().push(Link {
                        client: client.try_clone().unwrap(),
                        server: server.try_clone().unwrap(),
                        mode: Arc::clone(&mode),
                    });
                }
                let closed = Arc::new(AtomicBool::new(false));
                pump(&client, &server, &mode, &closed, false);
                pump(&server, &client, &mode, &closed, true);
            }
        });
        FaultyProxy { url, links, stop }
    }

    /// WebSocket connections currently flowing.
    pub fn live(&self) -> usize {
        self.links.lock().unwrap().len()
    }

    /// Breaks every flowing WebSocket connection; returns how many.
    pub fn fault(&self, fault: Fault) -> usize {
        let links: Vec<Link> = self.links.lock().unwrap().drain(..).collect();
        for link in &links {
            match fault {
                Fault::Cut => {
                    let _ = link.client.shutdown(Shutdown::Both);
                    let _ = link.server.shutdown(Shutdown::Both);
                }
                Fault::HalfOpen => link.mode.store(SWALLOW, Ordering::SeqCst),
                Fault::Stall => link.mode.store(STALLED, Ordering::SeqCst),
            }
        }
        links.len()
    }
}

impl Drop for FaultyProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
        self.fault(Fault::Cut);
    }
}

/// Copies `from` -> `to` on a thread, as the link's mode says. When either
/// side ends, both are shut down (a half-open or stalled link ends when the
/// client gives up on it).
fn pump(
    from: &TcpStream,
    to: &TcpStream,
    mode: &Arc<AtomicU8>,
    closed: &Arc<AtomicBool>,
    from_server: bool,
) {
    let (mut from, mut to) = (from.try_clone().unwrap(), to.try_clone().unwrap());
    let (mode, closed) = (Arc::clone(mode), Arc::clone(closed));
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        let _ = from.set_read_timeout(Some(Duration::from_millis(20)));
        while !closed.load(Ordering::SeqCst) {
            if from_server && mode.load(Ordering::SeqCst) == STALLED {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if mode.load(Ordering::SeqCst) == FLOWING && to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => break,
            }
        }
        closed.store(true, Ordering::SeqCst);
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}
