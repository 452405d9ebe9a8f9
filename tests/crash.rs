//! Crash safety: 20 rounds of SIGKILL at random points during runs, with a
//! restart each time. Acknowledged events are never lost, every conversation
//! is listed and runs again, startup never fails on what a crash left behind,
//! and no shell of a killed server lives on.

mod common;

use std::time::Duration;

use common::binary::BinaryServer;
use common::{
    create_scripted_conversation, get_ok, message, post_json, ws_connect, ws_next, Lcg, TempDir,
};
use serde_json::{json, Value};

const ROUNDS: usize = 20;

fn send(url: &str, id: &str, text: &str) {
    let (status, body) = post_json(
        &format!("{url}/api/conversations/{id}/events"),
        message(text, true),
    );
    assert_eq!(status, 200, "{body}");
}

#[test]
fn twenty_sigkills_lose_no_acknowledged_event() {
    let state = TempDir::new("crash-campaign");
    let work = TempDir::new("crash-campaign-work");
    let mut rng = Lcg::from_env_or_clock("OHS_CRASH_SEED");
    let seed = rng.seed();
    let marker = format!("ohs_campaign_{}", std::process::id());
    // A workspace command (a plain `sh -c`, no terminal) under a name that
    // carries the marker: `sleep` reached through a symlink.
    let sleeper = common::named_sleep(work.path(), &format!("{marker}_ws"));
    // (conversation id, ids acknowledged over its socket before a kill)
    let mut history: Vec<(String, Vec<String>)> = Vec::new();
    for round in 0..ROUNDS {
        let mut server = BinaryServer::spawn(state.path(), &[]);
        let url = server.url.clone();
        // Everything acknowledged before earlier kills is still there, and
        // every conversation is listed and not stuck in `running`.
        let listed = get_ok(&format!("{url}/api/conversations/search?limit=100"));
        let listed: Vec<&str> = listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap())
            .collect();
        for (id, acked) in &history {
            assert!(
                listed.contains(&id.as_str()),
                "round {round}: conversation {id} not listed"
            );
            let stored = common::stored_ids(&url, id);
            for a in acked {
                assert!(
                    stored.contains(a),
                    "round {round}: acknowledged event {a} of {id} lost (seed {seed})"
                );
            }
            let status =
                get_ok(&format!("{url}/api/conversations/{id}"))["execution_status"].clone();
            assert_ne!(status, "running", "round {round}: {id} wedged in running");
        }
        // Resume the previous round's conversation, start a new one, and kill
        // the server at a random point of their runs.
        if let Some((prev, _)) = history.last() {
            send(&url, prev, "write 3 facts into FACTS.txt");
        }
        let id = create_scripted_conversation(&url, work.path(), json!({}));
        let mut ws = ws_connect(&url, &format!("/sockets/events/{id}"));
        ws.get_mut()
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let first = ws_next(&mut ws);
        assert!(first.is_some(), "round {round}: no first frame");
        send(
            &url,
            &id,
            &format!("echo round {round}; exec -a {marker} sleep 30"),
        );
        let (status, _) = post_json(
            &format!("{url}/api/bash/start_bash_command"),
            json!({"command": format!("'{}' 30; true", sleeper.display())}),
        );
        assert_eq!(status, 200);
        let kill_after = Duration::from_millis(20 + rng.below(400) as u64);
        let deadline = std::time::Instant::now() + kill_after;
        let mut acked = Vec::new();
        while std::time::Instant::now() < deadline {
            if let Ok(tungstenite::Message::Text(t)) = ws.read() {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                if v["key"] != "full_state" {
                    acked.push(v["id"].as_str().unwrap().to_string());
                }
            }
        }
        server.kill();
        history.push((id, acked));
    }
    // A last start proves the final crash left nothing unreadable behind, and
    // no shell or command of a killed server is still running.
    let mut server = BinaryServer::spawn(state.path(), &[]);
    assert_eq!(
        get_ok(&format!("{}/api/conversations/count", server.url)),
        json!(ROUNDS)
    );
    server.kill();
    std::thread::sleep(Duration::from_millis(300));
    let left = common::processes_matching(&marker);
    assert!(
        left.is_empty(),
        "commands of killed servers live on: {}",
        left
    );
}
