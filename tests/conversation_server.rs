//! The conversation server through HTTP and the event socket: the REST
//! routes, the socket's framing, slow subscribers, and crash recovery.

mod common;

use std::time::{Duration, Instant};

use common::binary::BinaryServer;
use common::{
    create_scripted_conversation, get_json, message, post_json, raw_agent, wait_status,
    ws_close_code, ws_connect, ws_next, TempDir, TestServer,
};
use serde_json::{json, Value};

#[test]
fn conversation_routes_follow_the_reference() {
    let server = TestServer::start();
    let work = TempDir::new("conv");
    let base = &server.url;
    let id = create_scripted_conversation(base, work.path(), json!({}));
    let (status, info) = post_json(
        &format!("{base}/api/conversations"),
        json!({"agent": {"llm": {"model": "scripted/demo"}}, "workspace": {"working_dir": "x"}, "conversation_id": id}),
    );
    assert_eq!(
        (status, info["id"].as_str()),
        (200, Some(id.as_str())),
        "same id: existing conversation"
    );
    assert_eq!(info["execution_status"], "idle");
    assert_eq!(info["confirmation_policy"], json!({"kind": "NeverConfirm"}));
    assert_eq!(info["agent"]["kind"], "Agent");

    // A message is stored before the answer: a search right after sees it.
    let (s, ok) = post_json(
        &format!("{base}/api/conversations/{id}/events"),
        message("write 3 facts into FACTS.txt", false),
    );
    assert_eq!((s, ok), (200, json!({"success": true})));
    let (_, page) = get_json(&format!(
        "{base}/api/conversations/{id}/events/search?limit=100"
    ));
    let items = page["items"].as_array().unwrap();
    let kinds: Vec<&str> = items.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds[..3],
        [
            "SystemPromptEvent",
            "MessageEvent",
            "ConversationStateUpdateEvent"
        ]
    );
    assert_eq!(items[2]["key"], "last_user_message_id");
    // Anything after is the stats update of the automatic title.
    assert!(items[3..].iter().all(|e| e["key"] == "stats"), "{kinds:?}");
    assert!(
        page["items"][1].get("sender").is_none(),
        "null fields are omitted"
    );

    let (s, _) = post_json(&format!("{base}/api/conversations/{id}/run"), json!(null));
    assert_eq!(s, 200);
    let info = wait_status(base, &id, "finished");
    assert!(work.path().join("FACTS.txt").exists());
    assert_eq!(
        info["stats"]["usage_to_metrics"]["agent"]["model_name"],
        "scripted/demo"
    );

    // Paging: limit 2, next_page_id is the first item not returned.
    let (_, all) = get_json(&format!(
        "{base}/api/conversations/{id}/events/search?limit=100"
    ));
    let all = all["items"].as_array().unwrap().clone();
    let (_, count) = get_json(&format!("{base}/api/conversations/{id}/events/count"));
    assert_eq!(count, json!(all.len()));
    let (_, p1) = get_json(&format!(
        "{base}/api/conversations/{id}/events/search?limit=2"
    ));
    assert_eq!(p1["items"].as_array().unwrap().len(), 2);
    assert_eq!(p1["next_page_id"], all[2]["id"]);
    let (_, p2) = get_json(&format!(
        "{base}/api/conversations/{id}/events/search?limit=2&page_id={}",
        all[2]["id"].as_str().unwrap()
    ));
    assert_eq!(p2["items"][0]["id"], all[2]["id"]);
    let (_, actions) = get_json(&format!(
        "{base}/api/conversations/{id}/events/search?kind=ActionEvent"
    ));
    assert!(actions["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["kind"] == "ActionEvent"));
    let (_, desc) = get_json(&format!(
        "{base}/api/conversations/{id}/events/search?sort_order=TIMESTAMP_DESC&limit=1"
    ));
    assert_eq!(desc["items"][0]["id"], all.last().unwrap()["id"]);
    let (s, one) = get_json(&format!(
        "{base}/api/conversations/{id}/events/{}",
        all[1]["id"].as_str().unwrap()
    ));
    assert_eq!((s, &one), (200, &all[1]));
    assert_eq!(
        get_json(&format!(
            "{base}/api/conversations/{id}/events/search?limit=101"
        ))
        .0,
        422
    );
    let (_, final_response) = get_json(&format!(
        "{base}/api/conversations/{id}/agent_final_response"
    ));
    assert!(final_response["response"]
        .as_str()
        .unwrap()
        .contains("FACTS.txt"));

    // List, count, title.
    let (_, list) = get_json(&format!("{base}/api/conversations/search"));
    assert_eq!(list["items"][0]["id"], json!(id));
    assert_eq!(
        get_json(&format!("{base}/api/conversations/count")).1,
        json!(1)
    );
    assert_eq!(
        get_json(&format!("{base}/api/conversations/count?status=finished")).1,
        json!(1)
    );
    let r = raw_agent()
        .patch(format!("{base}/api/conversations/{id}"))
        .send_json(json!({"title": "Facts"}))
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        get_json(&format!("{base}/api/conversations/{id}")).1["title"],
        "Facts"
    );

    // Errors in the reference's shapes.
    assert_eq!(
        get_json(&format!("{base}/api/conversations/not-a-uuid")).0,
        422
    );
    let unknown = openhands_sync::util::id::uuid4();
    assert_eq!(
        get_json(&format!("{base}/api/conversations/{unknown}")),
        (404, json!({"detail": "Not Found"}))
    );
    assert_eq!(
        post_json(
            &format!("{base}/api/conversations/{unknown}/run"),
            json!(null)
        )
        .0,
        404
    );
    assert_eq!(
        post_json(
            &format!("{base}/api/conversations"),
            json!({"workspace": {}})
        )
        .0,
        422
    );

    // Delete removes it, files included.
    let r = raw_agent()
        .delete(format!("{base}/api/conversations/{id}"))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(get_json(&format!("{base}/api/conversations/{id}")).0, 404);
    assert!(std::fs::read_dir(server.state.path().join("conversations"))
        .unwrap()
        .next()
        .is_none());
}

#[test]
fn run_conflicts_reads_stay_fast_and_delete_stops_a_long_command() {
    let server = TestServer::start();
    let work = TempDir::new("conv-long");
    let base = &server.url;
    let id = create_scripted_conversation(base, work.path(), json!({}));
    let marker = format!("ohs_long_{}", std::process::id());
    post_json(
        &format!("{base}/api/conversations/{id}/events"),
        message(&format!("echo start; exec -a {marker} sleep 30"), true),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while common::processes_matching(&marker).is_empty() {
        assert!(Instant::now() < deadline, "the command did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        post_json(&format!("{base}/api/conversations/{id}/run"), json!(null)).0,
        409
    );
    // Reads answer at once while the step runs a 30 s command.
    let t = Instant::now();
    for _ in 0..20 {
        assert_eq!(
            get_json(&format!("{base}/api/conversations/{id}")).1["execution_status"],
            "running"
        );
        assert_eq!(
            get_json(&format!("{base}/api/conversations/{id}/events/search")).0,
            200
        );
    }
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "reads waited for the run: {:?}",
        t.elapsed()
    );
    let t = Instant::now();
    let r = raw_agent()
        .delete(format!("{base}/api/conversations/{id}"))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(t.elapsed() < Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        common::processes_matching(&marker).is_empty(),
        "the command survived delete"
    );
}

#[test]
fn event_socket_frames_auth_and_resend() {
    let server = TestServer::with_keys(&["sock-key"]);
    let work = TempDir::new("conv-ws");
    let base = &server.url;
    let create = |body: Value| {
        raw_agent()
            .post(format!("{base}/api/conversations"))
            .header("X-Session-API-Key", "sock-key")
            .send_json(&body)
            .unwrap()
            .body_mut()
            .read_json::<Value>()
            .unwrap()
    };
    let agent = openhands_sync::agent::spec::AgentSpec::default_for(
        openhands_sync::llm::LlmConfig::new("scripted/demo"),
    );
    let info = create(
        json!({"agent": agent.to_value_exposed(), "workspace": {"working_dir": work.path()}}),
    );
    let id = info["id"].as_str().unwrap().to_string();
    let path = format!("/sockets/events/{id}");

    // First-message auth: a wrong key closes with 4001, an unknown id with 4004.
    let mut ws = ws_connect(base, &path);
    ws.send(tungstenite::Message::text(
        json!({"type": "auth", "session_api_key": "nope"}).to_string(),
    ))
    .unwrap();
    assert_eq!(ws_close_code(&mut ws), Some(4001));
    let mut ws = ws_connect(
        base,
        &format!(
            "/sockets/events/{}?session_api_key=sock-key",
            openhands_sync::util::id::uuid4()
        ),
    );
    assert_eq!(ws_close_code(&mut ws), Some(4004));

    let mut ws = ws_connect(base, &path);
    ws.send(tungstenite::Message::text(
        json!({"type": "auth", "session_api_key": "sock-key"}).to_string(),
    ))
    .unwrap();
    let first = ws_next(&mut ws).unwrap();
    assert_eq!(
        (first["kind"].as_str(), first["key"].as_str()),
        (Some("ConversationStateUpdateEvent"), Some("full_state"))
    );
    assert_eq!(first["value"]["execution_status"], "idle");
    assert!(!first.to_string().contains("sk-"), "no key in the state");

    // A user message sent over the socket is stored and runs the agent.
    ws.send(tungstenite::Message::text(json!({"role": "user", "content": [{"type": "text", "text": "write 3 facts into FACTS.txt"}]}).to_string())).unwrap();
    let mut seen = Vec::new();
    loop {
        let e = ws_next(&mut ws).expect("events until the end-of-run snapshot");
        if e["key"] == "full_state" {
            assert_eq!(e["value"]["execution_status"], "finished");
            break;
        }
        seen.push(e);
    }
    let kinds: Vec<&str> = seen.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(&kinds[..2], ["SystemPromptEvent", "MessageEvent"]);
    assert!(kinds.contains(&"ActionEvent") && kinds.contains(&"ObservationEvent"));
    assert!(seen.iter().any(|e| e["key"] == "stats"));
    // What the socket delivered is exactly the stored log, in order.
    let (_, page) = {
        let mut r = raw_agent()
            .get(format!("{base}/api/conversations/{id}/events/search"))
            .header("X-Session-API-Key", "sock-key")
            .call()
            .unwrap();
        (
            r.status().as_u16(),
            r.body_mut().read_json::<Value>().unwrap(),
        )
    };
    let stored: Vec<&Value> = page["items"].as_array().unwrap().iter().collect();
    assert_eq!(seen.iter().collect::<Vec<_>>(), stored);

    // resend_mode=all replays the log after the snapshot.
    let mut again = ws_connect(
        base,
        &format!("{path}?session_api_key=sock-key&resend_mode=all"),
    );
    assert_eq!(ws_next(&mut again).unwrap()["key"], "full_state");
    for e in &stored {
        assert_eq!(&&ws_next(&mut again).unwrap(), e);
    }
    let since = stored[3]["timestamp"].as_str().unwrap();
    let mut since_ws = ws_connect(
        base,
        &format!("{path}?session_api_key=sock-key&resend_mode=since&after_timestamp={since}"),
    );
    assert_eq!(ws_next(&mut since_ws).unwrap()["key"], "full_state");
    assert_eq!(&ws_next(&mut since_ws).unwrap(), stored[3]);
}

#[test]
fn a_stalled_subscriber_never_slows_the_others() {
    let server = TestServer::start();
    let work = TempDir::new("conv-stall");
    let base = &server.url;
    let id = create_scripted_conversation(base, work.path(), json!({}));
    let path = format!("/sockets/events/{id}");
    // This socket never reads: its TCP buffers fill, then its queue.
    let stalled = ws_connect(base, &path);
    let mut reader = ws_connect(base, &path);
    assert_eq!(ws_next(&mut reader).unwrap()["key"], "full_state");
    let big = "x".repeat(20_000);
    let started = Instant::now();
    for i in 0..100 {
        // Each message gives a MessageEvent and a state update: 200 events.
        let (s, _) = post_json(
            &format!("{base}/api/conversations/{id}/events"),
            message(&format!("{i} {big}"), false),
        );
        assert_eq!(s, 200);
    }
    let posting = started.elapsed();
    assert!(
        posting < Duration::from_secs(10),
        "a stalled socket slowed the producer: {posting:?}"
    );
    let mut messages = Vec::new();
    let mut events = 0;
    while events < 201 {
        let e = ws_next(&mut reader).expect("every event arrives");
        events += 1;
        if e["kind"] == "MessageEvent" {
            let text = e["llm_message"]["content"][0]["text"]
                .as_str()
                .unwrap()
                .to_string();
            messages.push(text.split(' ').next().unwrap().parse::<usize>().unwrap());
        }
    }
    assert_eq!(
        messages,
        (0..100).collect::<Vec<_>>(),
        "in order, none missing"
    );
    drop(stalled);
}

#[test]
fn sigkill_mid_run_keeps_every_acknowledged_event() {
    let state = TempDir::new("crash-state");
    let work = TempDir::new("crash-work");
    let mut server = BinaryServer::spawn(state.path(), &[]);
    let url = server.url.clone();
    let id = create_scripted_conversation(&url, work.path(), json!({}));
    let mut ws = ws_connect(&url, &format!("/sockets/events/{id}"));
    assert_eq!(ws_next(&mut ws).unwrap()["key"], "full_state");
    let marker = format!("ohs_crash_{}", std::process::id());
    post_json(
        &format!("{url}/api/conversations/{id}/events"),
        message(&format!("echo go; exec -a {marker} sleep 60"), true),
    );
    let mut acknowledged = Vec::new();
    loop {
        let e = ws_next(&mut ws).expect("events before the crash");
        acknowledged.push(e["id"].as_str().unwrap().to_string());
        if e["kind"] == "ActionEvent" {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    server.kill(); // SIGKILL

    let mut server = BinaryServer::spawn(state.path(), &[]);
    let url = server.url.clone();
    let (_, page) = get_json(&format!(
        "{url}/api/conversations/{id}/events/search?limit=100"
    ));
    let stored: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    for a in &acknowledged {
        assert!(stored.contains(&a.as_str()), "acknowledged event {a} lost");
    }
    let info = wait_status(&url, &id, "error");
    assert_eq!(info["id"], json!(id));
    assert!(page["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["code"] == "RunInterrupted"));
    // It runs again.
    post_json(
        &format!("{url}/api/conversations/{id}/events"),
        message("write 3 facts into FACTS.txt", true),
    );
    wait_status(&url, &id, "finished");
    server.kill();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        common::processes_matching(&marker).is_empty(),
        "the killed server's command lives on"
    );
}

#[test]
fn a_distinctive_key_and_secret_appear_nowhere_in_clear() {
    const KEY: &str = "sk-DISTINCTIVE-key-7f3a9c";
    const SECRET: &str = "tok-DISTINCTIVE-secret-51d2";
    let fake = common::fake_llm::FakeLlm::seed();
    let state = TempDir::new("secrets-state");
    let work = TempDir::new("secrets-work");
    for json_logs in ["true", "false"] {
        let mut server = BinaryServer::spawn(
            state.path(),
            &[
                ("LOG_JSON", json_logs),
                ("OH_SECRET_KEY", "server-sealing-key"),
                ("LOG_LEVEL", "debug"),
            ],
        );
        let url = server.url.clone();
        let agent = openhands_sync::agent::spec::AgentSpec::default_for(
            openhands_sync::llm::LlmConfig::new("openai/gpt-4o")
                .with_api_key(KEY)
                .with_base_url(format!("{}/v1", fake.url)),
        );
        let body =
            json!({"agent": agent.to_value_exposed(), "workspace": {"working_dir": work.path()}});
        let (status, info) = post_json(&format!("{url}/api/conversations"), body);
        assert_eq!(status, 201);
        let id = info["id"].as_str().unwrap().to_string();
        let mut ws = ws_connect(&url, &format!("/sockets/events/{id}"));
        let mut frames = vec![ws_next(&mut ws).unwrap().to_string()];
        post_json(
            &format!("{url}/api/conversations/{id}/secrets"),
            json!({"secrets": {"MY_TOKEN": SECRET}}),
        );
        post_json(
            &format!("{url}/api/conversations/{id}/events"),
            message("write 3 facts into FACTS.txt", true),
        );
        loop {
            let f = ws_next(&mut ws).expect("frames until the run ends");
            let done = f["key"] == "full_state";
            frames.push(f.to_string());
            if done {
                break;
            }
        }
        let mut seen = frames.join("\n");
        seen.push_str(
            &get_json(&format!("{url}/api/conversations/{id}"))
                .1
                .to_string(),
        );
        seen.push_str(
            &get_json(&format!("{url}/api/conversations/search"))
                .1
                .to_string(),
        );
        seen.push_str(
            &get_json(&format!(
                "{url}/api/conversations/{id}/events/search?limit=100"
            ))
            .1
            .to_string(),
        );
        assert!(server.terminate(Duration::from_secs(15)).is_some());
        seen.push_str(&server.log());
        let mut files = Vec::new();
        collect_files(state.path(), &mut files);
        assert!(!files.is_empty());
        for f in &files {
            seen.push_str(&String::from_utf8_lossy(&std::fs::read(f).unwrap()));
        }
        for needle in [KEY, SECRET] {
            assert!(
                !seen.contains(needle),
                "{needle} found in clear (LOG_JSON={json_logs})"
            );
        }
        assert!(
            seen.contains("**********"),
            "secrets are masked, not dropped"
        );
    }
    let requests = fake.requests.lock().unwrap();
    assert!(!requests.is_empty(), "the key was used for real calls");
}

fn collect_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            collect_files(&p, out);
        } else {
            out.push(p);
        }
    }
}
