//! Load: 64 concurrent clients for a bounded time, mixing workspace commands
//! (`execute_bash_command`), event searches (conversation and bash events)
//! and event-socket subscriptions (connect, replay, close, again), while a
//! driver runs conversation after conversation (create, run, delete).
//! Asserts 0 errors and a flat server RSS after warm-up: it may grow only by
//! the index entries of the bash events stored meanwhile (two 48-byte keys
//! per command, budgeted at 256 bytes); prints p50/p99 per operation.
//!
//! `cargo test` runs it for 10 s against the debug binary. The README figures:
//! `OHS_LOAD_SECONDS=60 cargo test --release --test load -- --nocapture`.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::binary::BinaryServer;
use common::{create_scripted_conversation, message, raw_agent, TempDir};
use serde_json::{json, Value};

const CLIENTS: usize = 64;

fn seconds() -> u64 {
    std::env::var("OHS_LOAD_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10)
}

#[derive(Default)]
struct Tally {
    latencies: Mutex<Vec<(&'static str, Duration)>>,
    errors: Mutex<Vec<String>>,
}

impl Tally {
    fn ok(&self, op: &'static str, took: Duration) {
        self.latencies.lock().unwrap().push((op, took));
    }
    fn count(&self, op: &str) -> usize {
        self.latencies
            .lock()
            .unwrap()
            .iter()
            .filter(|(o, _)| *o == op)
            .count()
    }
    fn error(&self, what: String) {
        self.errors.lock().unwrap().push(what);
    }
}

/// One client: a keep-alive HTTP agent (or a socket) doing one kind of work
/// in a loop until `stop`.
fn client(i: usize, url: String, ids: Arc<Vec<String>>, stop: Arc<AtomicBool>, tally: Arc<Tally>) {
    let agent = raw_agent();
    let id = &ids[i % ids.len()];
    while !stop.load(Ordering::SeqCst) {
        let started = Instant::now();
        let (op, outcome): (&'static str, Result<(), String>) = match i % 4 {
            0 | 1 => ("exec", exec(&agent, &url, i)),
            2 => ("search", search(&agent, &url, id, i)),
            _ => ("subscribe", subscribe(&url, id)),
        };
        match outcome {
            Ok(()) => tally.ok(op, started.elapsed()),
            Err(e) => tally.error(format!("client {i} {op}: {e}")),
        }
    }
}

fn exec(agent: &ureq::Agent, url: &str, i: usize) -> Result<(), String> {
    let mut r = agent
        .post(format!("{url}/api/bash/execute_bash_command"))
        .send_json(json!({"command": format!("echo client-{i}"), "timeout": 30}))
        .map_err(|e| e.to_string())?;
    if r.status().as_u16() != 200 {
        return Err(format!("status {}", r.status()));
    }
    let v: Value = r.body_mut().read_json().map_err(|e| e.to_string())?;
    match v["stdout"].as_str() {
        Some(out) if out == format!("client-{i}\n") && v["exit_code"] == 0 => Ok(()),
        _ => Err(format!("wrong answer {v}")),
    }
}

fn search(agent: &ureq::Agent, url: &str, id: &str, i: usize) -> Result<(), String> {
    let path = if i % 8 == 2 {
        format!("{url}/api/conversations/{id}/events/search?limit=100")
    } else {
        format!("{url}/api/bash/bash_events/search?limit=100&sort_order=TIMESTAMP_DESC")
    };
    let mut r = agent.get(&path).call().map_err(|e| e.to_string())?;
    if r.status().as_u16() != 200 {
        return Err(format!("status {}", r.status()));
    }
    let v: Value = r.body_mut().read_json().map_err(|e| e.to_string())?;
    if v["items"].as_array().is_some_and(|a| !a.is_empty()) {
        Ok(())
    } else {
        Err(format!("empty page {path}"))
    }
}

/// Subscribes with `resend_mode=all`, reads the first frame and at least the
/// replayed events counted just before, then closes.
fn subscribe(url: &str, id: &str) -> Result<(), String> {
    let addr = url.trim_start_matches("http://");
    let tcp = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let (mut ws, _) = tungstenite::client(
        format!("ws://{addr}/sockets/events/{id}?resend_mode=all"),
        tcp,
    )
    .map_err(|e| format!("handshake: {e}"))?;
    let mut frames = 0;
    while frames < 10 {
        match ws.read().map_err(|e| e.to_string())? {
            tungstenite::Message::Text(_) => frames += 1,
            tungstenite::Message::Close(_) => return Err(format!("closed after {frames}")),
            _ => {}
        }
    }
    let _ = ws.close(None);
    let _ = ws.flush();
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

#[test]
fn sixty_four_clients_mixed_load_without_errors_or_growth() {
    let secs = seconds();
    let state = TempDir::new("load-state");
    let work = TempDir::new("load-work");
    let server = BinaryServer::spawn(state.path(), &[]);
    let url = server.url.clone();
    // Four conversations with a finished run each, so there is history to page.
    let ids: Vec<String> = (0..4)
        .map(|_| {
            let id = create_scripted_conversation(&url, work.path(), json!({}));
            common::post_json(
                &format!("{url}/api/conversations/{id}/events"),
                message("echo warm", true),
            );
            common::wait_status(&url, &id, "finished");
            id
        })
        .collect();
    // And one workspace command, so the bash event search has a page to return.
    exec(&raw_agent(), &url, 0).unwrap();
    let ids = Arc::new(ids);
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let runs = Arc::new(AtomicUsize::new(0));
    // A driver keeps conversations running: create, run, delete, again.
    let driver = {
        let (url, stop, runs) = (url.clone(), Arc::clone(&stop), Arc::clone(&runs));
        let work = work.path().to_path_buf();
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                let id = create_scripted_conversation(&url, &work, json!({}));
                common::post_json(
                    &format!("{url}/api/conversations/{id}/events"),
                    message(&format!("echo run {n}"), true),
                );
                common::wait_status(&url, &id, "finished");
                let gone = raw_agent()
                    .delete(format!("{url}/api/conversations/{id}"))
                    .call()
                    .unwrap();
                assert_eq!(gone.status().as_u16(), 200);
                runs.fetch_add(1, Ordering::SeqCst);
                n += 1;
            }
        })
    };
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (url, ids, stop, tally) = (
                url.clone(),
                Arc::clone(&ids),
                Arc::clone(&stop),
                Arc::clone(&tally),
            );
            std::thread::spawn(move || client(i, url, ids, stop, tally))
        })
        .collect();
    // RSS once per second; warm-up is the first fifth of the time.
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut execs_at_warm = None;
    while started.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_secs(1));
        samples.push(server.rss_kib());
        if execs_at_warm.is_none() && started.elapsed() >= Duration::from_secs(secs) / 5 {
            execs_at_warm = Some((samples.len(), tally.count("exec")));
        }
    }
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().unwrap();
    }
    driver.join().unwrap();
    let elapsed = started.elapsed();

    let errors = tally.errors.lock().unwrap();
    let latencies = tally.latencies.lock().unwrap();
    println!(
        "{CLIENTS} clients for {:.1} s, {} conversation runs alongside",
        elapsed.as_secs_f64(),
        runs.load(Ordering::SeqCst)
    );
    println!(
        "{:<10} {:>8} {:>9} {:>9} {:>9} {:>9}",
        "operation", "count", "per s", "p50 ms", "p99 ms", "max ms"
    );
    for op in ["exec", "search", "subscribe"] {
        let mut l: Vec<Duration> = latencies
            .iter()
            .filter(|(o, _)| *o == op)
            .map(|(_, d)| *d)
            .collect();
        l.sort();
        println!(
            "{op:<10} {:>8} {:>9.0} {:>9.2} {:>9.2} {:>9.2}",
            l.len(),
            l.len() as f64 / elapsed.as_secs_f64(),
            percentile(&l, 0.5).as_secs_f64() * 1e3,
            percentile(&l, 0.99).as_secs_f64() * 1e3,
            l.last().copied().unwrap_or_default().as_secs_f64() * 1e3
        );
        assert!(!l.is_empty(), "no successful {op}");
    }
    // Steady state: the median of the first three samples after warm-up
    // against the median of the last three.
    let (warm, execs_then) = execs_at_warm.unwrap_or((1, 0));
    let median = |v: &[u64]| {
        let mut v = v.to_vec();
        v.sort();
        v.get(v.len() / 2).copied().unwrap_or(0)
    };
    let after = &samples[warm.min(samples.len() - 1)..];
    let low = median(&after[..after.len().min(3)]);
    let high = median(&after[after.len().saturating_sub(3)..]);
    let execs_total = latencies.iter().filter(|(o, _)| *o == "exec").count();
    let new_execs = (execs_total - execs_then) as u64;
    let budget = low + 4 * 1024 + new_execs * 256 / 1024;
    println!(
        "server RSS after warm-up: {low} KiB -> {high} KiB ({} bytes per command since; budget {budget} KiB)",
        (high.saturating_sub(low) * 1024).checked_div(new_execs).unwrap_or(0)
    );
    println!("RSS samples (KiB, one per second): {samples:?}");
    assert!(
        errors.is_empty(),
        "{} errors: {:#?}",
        errors.len(),
        &errors[..errors.len().min(10)]
    );
    assert!(
        high <= budget,
        "server RSS grew from {low} KiB to {high} KiB under steady load ({new_execs} commands)"
    );
}
