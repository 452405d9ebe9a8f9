//! `RemoteConversation` against our server: the seed flow, callbacks across
//! dropped sockets, and slow callbacks.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::fake_llm::FakeLlm;
use common::proxy::CuttingProxy;
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

#[test]
fn twenty_dropped_sockets_lose_and_repeat_nothing() {
    let server = TestServer::start();
    let proxy = CuttingProxy::start(&server.url);
    let fake = common::fake_llm::counting(40, Duration::from_millis(60));
    let dir = TempDir::new("remote-drop");
    let ws = workspace_in(&proxy.url, &dir);
    let llm = LlmConfig::new("openai/x").with_base_url(format!("{}/v1", fake.url));
    let (seen, callback) = recorder();
    let conv = RemoteConversation::builder(&ws, AgentSpec::default_for(llm))
        .on_event(callback)
        .build()
        .unwrap();
    conv.send_message("count").unwrap();
    conv.start_run().unwrap();
    let mut cuts = 0;
    while cuts < 20 {
        std::thread::sleep(Duration::from_millis(90));
        cuts += proxy.cut_websockets();
    }
    assert_eq!(conv.run().unwrap(), ExecutionStatus::Finished);
    let stored = stored_ids(&server.url, conv.id());
    let deadline = Instant::now() + Duration::from_secs(15);
    while persisted_only(&seen.lock().unwrap()) != stored && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let got = persisted_only(&seen.lock().unwrap());
    assert!(cuts >= 20);
    assert_eq!(
        got.len(),
        stored.len(),
        "gaps or duplicates after {cuts} cuts"
    );
    assert_eq!(got, stored, "every event exactly once, in order");
    let unique: std::collections::HashSet<_> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|(id, _)| id.clone())
        .collect();
    assert_eq!(
        unique.len(),
        seen.lock().unwrap().len(),
        "no duplicates at all"
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
