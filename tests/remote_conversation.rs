//! `RemoteConversation` against our server: the seed flow, callbacks across
//! a hundred socket faults (cuts, half-open connections, a reader that stops
//! reading), and slow callbacks.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::binary::BinaryServer;
use common::fake_llm::FakeLlm;
use common::proxy::{Fault, FaultyProxy};
use common::{stored_ids, TempDir, TestServer};
use openhands_sync::agent::spec::AgentSpec;
use openhands_sync::client::{RemoteConversation, RemoteWorkspace};
use openhands_sync::llm::{Llm, LlmConfig};
use openhands_sync::wire::{Event, ExecutionStatus};

fn workspace_in(url: &str, dir: &TempDir) -> RemoteWorkspace {
    RemoteWorkspace::builder(url)
        .working_dir(dir.path().to_string_lossy())
        .build()
}

fn persisted_only(ids: &[(String, bool)]) -> Vec<String> {
    ids.iter()
        .filter(|(_, transient)| !transient)
        .map(|(id, _)| id.clone())
        .collect()
}

/// (id, is_full_state) of every event a callback saw.
type Seen = Arc<Mutex<Vec<(String, bool)>>>;

/// Records (id, is_full_state) of every callback.
fn recorder() -> (Seen, impl FnMut(&Event) + Send + 'static) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    (seen, move |e: &Event| {
        let transient = e.as_state_update().is_some_and(|u| u.is_full_state());
        sink.lock().unwrap().push((e.id().to_string(), transient));
    })
}

#[test]
fn seed_flow_through_the_rust_client() {
    let server = TestServer::start();
    let fake = FakeLlm::seed();
    let dir = TempDir::new("remote-seed");
    let ws = workspace_in(&server.url, &dir);
    let llm = LlmConfig::new("openai/gpt-4o")
        .with_api_key("sk-remote-test")
        .with_base_url(format!("{}/v1", fake.url))
        .with_usage_id("agent");
    let (seen, callback) = recorder();
    let conv = RemoteConversation::builder(&ws, AgentSpec::default_for(llm.clone()))
        .on_event(callback)
        .build()
        .unwrap();
    conv.send_message("Read the current repo and write 3 facts about the project into FACTS.txt.")
        .unwrap();
    let title = conv
        .generate_title(60, Some(&Llm::new(llm.with_usage_id("title"))))
        .unwrap();
    assert!(!title.is_empty() && title.chars().count() <= 60);
    assert_eq!(conv.run().unwrap(), ExecutionStatus::Finished);
    assert!(dir.path().join("FACTS.txt").exists());
    conv.send_message("Great! Now delete that file.").unwrap();
    assert_eq!(conv.run().unwrap(), ExecutionStatus::Finished);
    assert!(!dir.path().join("FACTS.txt").exists());

    let state = conv.state();
    assert_eq!(state.execution_status(), ExecutionStatus::Finished);
    assert_eq!(state.id, conv.id());
    let events = state.events();
    assert!(events.len() > 10);
    assert_eq!(events[events.len() - 5..].len(), 5);
    assert!(events.iter().filter_map(|e| e.as_state_update()).count() > 3);
    assert!(conv.stats().combined_metrics().accumulated_cost > 0.0);
    // Callbacks saw exactly the stored events, in order.
    let deadline = Instant::now() + Duration::from_secs(5);
    let stored = stored_ids(&server.url, conv.id());
    while persisted_only(&seen.lock().unwrap()).len() < stored.len() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(persisted_only(&seen.lock().unwrap()), stored);
    let id = conv.id().to_string();
    conv.close().unwrap();
    let gone = RemoteWorkspace::new(&server.url)
        .http()
        .call("GET", &format!("/api/conversations/{id}"), &[], None)
        .unwrap_err();
    assert_eq!(gone.status(), Some(404));
}

/// How many socket faults the campaign forces (`OHS_SOCKET_FAULTS` to change).
fn fault_count() -> usize {
    std::env::var("OHS_SOCKET_FAULTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100)
}

#[test]
fn a_hundred_socket_faults_lose_and_repeat_nothing() {
    let state = TempDir::new("faults-state");
    let dir = TempDir::new("faults-work");
    let server = BinaryServer::spawn(state.path(), &[]);
    let idle_threads = server.threads();
    let proxy = FaultyProxy::start(&server.url);
    let fake = common::fake_llm::counting(100_000, Duration::from_millis(25));
    let ws = workspace_in(&proxy.url, &dir);
    let llm = LlmConfig::new("openai/x").with_base_url(format!("{}/v1", fake.url));
    let (seen, callback) = recorder();
    let conv = RemoteConversation::builder(&ws, AgentSpec::default_for(llm))
        .on_event(callback)
        .socket_keepalive(Duration::from_millis(50))
        .build()
        .unwrap();
    conv.send_message("count").unwrap();
    conv.start_run().unwrap();
    let kinds = [Fault::Cut, Fault::HalfOpen, Fault::Cut, Fault::Stall];
    let wanted = fault_count();
    let (mut done, mut warm_rss) = (0, 0);
    let health = format!("{}/health", server.url);
    while done < wanted {
        // Wait for the client to be connected again, let a few events flow,
        // then break the connection.
        let deadline = Instant::now() + Duration::from_secs(10);
        while proxy.live() == 0 {
            assert!(
                Instant::now() < deadline,
                "no reconnection after fault {done}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(30 + (done as u64 * 7) % 50));
        done += proxy.fault(kinds[done % kinds.len()]);
        if done % 10 == 0 {
            // The server stays responsive throughout.
            let r = common::raw_agent().get(&health).call().unwrap();
            assert_eq!(r.status().as_u16(), 200);
        }
        if done == 20 {
            warm_rss = server.rss_kib();
        }
    }
    conv.pause().unwrap();
    common::wait_status(&server.url, conv.id(), "paused");
    let end_rss = server.rss_kib();
    let stored = stored_ids(&server.url, conv.id());
    let deadline = Instant::now() + Duration::from_secs(20);
    while persisted_only(&seen.lock().unwrap()) != stored && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let got = persisted_only(&seen.lock().unwrap());
    let unique: std::collections::HashSet<_> = seen.lock().unwrap().iter().cloned().collect();
    println!(
        "{done} faults, {} events, server RSS {warm_rss} KiB after 20 faults, {end_rss} KiB at the end",
        stored.len()
    );
    assert!(
        stored.len() > 2 * wanted,
        "too few events to mean anything: {}",
        stored.len()
    );
    assert_eq!(
        got.len(),
        stored.len(),
        "gaps or duplicates after {done} faults"
    );
    assert_eq!(got, stored, "every event exactly once, in order");
    assert_eq!(
        unique.len(),
        seen.lock().unwrap().len(),
        "no duplicates at all"
    );
    // Broken sockets leave nothing behind on the server: once the dead
    // connections are noticed, only the live socket's threads remain.
    let deadline = Instant::now() + Duration::from_secs(15);
    while server.threads() > idle_threads + 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        server.threads() <= idle_threads + 4,
        "{} threads left on the server (idle: {idle_threads})",
        server.threads()
    );
    assert!(
        wanted < 100 || end_rss < warm_rss + 8 * 1024,
        "server memory grew from {warm_rss} KiB to {end_rss} KiB"
    );
}

#[test]
fn a_slow_callback_does_not_delay_the_run() {
    let server = TestServer::start();
    let dir = TempDir::new("remote-slow");
    let ws = workspace_in(&server.url, &dir);
    let (seen, mut record) = recorder();
    let conv =
        RemoteConversation::builder(&ws, AgentSpec::default_for(LlmConfig::new("scripted/demo")))
            .on_event(move |e| {
                std::thread::sleep(Duration::from_millis(200));
                record(e);
            })
            .build()
            .unwrap();
    conv.send_message("write 3 facts into FACTS.txt").unwrap();
    let started = Instant::now();
    assert_eq!(conv.run().unwrap(), ExecutionStatus::Finished);
    let took = started.elapsed();
    let total = stored_ids(&server.url, conv.id()).len();
    let delivered = persisted_only(&seen.lock().unwrap()).len();
    // 20 stored events at 200 ms each would take 4 s; the run did not wait.
    assert!(total >= 15, "{total}");
    assert!(
        took < Duration::from_millis(200 * total as u64 / 2),
        "run waited for callbacks: {took:?}"
    );
    assert!(
        delivered < total,
        "callbacks were still catching up ({delivered}/{total})"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while persisted_only(&seen.lock().unwrap()).len() < total && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        persisted_only(&seen.lock().unwrap()),
        stored_ids(&server.url, conv.id())
    );
}
