//! A loopback TCP proxy that can cut its WebSocket connections on demand,
//! to test reconnection.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub struct CuttingProxy {
    pub url: String,
    sockets: Arc<Mutex<Vec<TcpStream>>>,
    stop: Arc<AtomicBool>,
    pub cuts: AtomicUsize,
}

impl CuttingProxy {
    pub fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").to_string();
        let sockets = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (socks, halt) = (Arc::clone(&sockets), Arc::clone(&stop));
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
                if first[..n].starts_with(b"GET /sockets/") {
                    socks.lock().unwrap().push(client.try_clone().unwrap());
                }
                pump(client.try_clone().unwrap(), server.try_clone().unwrap());
                pump(server, client);
            }
        });
        CuttingProxy {
            url,
            sockets,
            stop,
            cuts: AtomicUsize::new(0),
        }
    }

    /// Cuts every open WebSocket connection; returns how many.
    pub fn cut_websockets(&self) -> usize {
        let socks: Vec<TcpStream> = self.sockets.lock().unwrap().drain(..).collect();
        for s in &socks {
            let _ = s.shutdown(Shutdown::Both);
        }
        self.cuts.fetch_add(socks.len(), Ordering::SeqCst);
        socks.len()
    }
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
        self.cut_websockets();
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}
