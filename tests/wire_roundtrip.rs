//! Every JSON body and event in the reference captures parses into our wire
//! types and serialises back to the same JSON (key order aside).

use std::path::PathBuf;

use openhands_sync::wire::{
    BashCommand, BashEvent, ConversationInfo, Event, ExecuteBashRequest, HealthStatus, Page,
    SendMessageRequest, StartConversationRequest, Success,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

fn reference_dir() -> PathBuf {
    let shared = std::env::var_os("OPENHANDS_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    let dir = shared.join("reference");
    assert!(
        dir.is_dir(),
        "reference captures not found at {}",
        dir.display()
    );
    dir
}

/// Drops object keys whose value is null, recursively: the reference omits
/// null fields on the wire (`exclude_none`) while its client dumps keep them.
fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

fn roundtrip<T: DeserializeOwned + Serialize>(what: &str, original: &Value) -> T {
    let parsed: T = serde_json::from_value(original.clone())
        .unwrap_or_else(|e| panic!("{what}: does not parse: {e}\n{original}"));
    let back = serde_json::to_value(&parsed).expect("serialises");
    let mut diffs = Vec::new();
    diff_paths("", original, &back, &mut diffs);
    assert!(
        diffs.is_empty(),
        "{what}: round trip changed the JSON at {diffs:?}"
    );
    parsed
}

/// Paths where `a` and `b` differ, for readable failures.
fn diff_paths(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                match (x.get(k), y.get(k)) {
                    (Some(va), Some(vb)) => diff_paths(&format!("{path}.{k}"), va, vb, out),
                    (va, vb) => out.push(format!("{path}.{k}: {va:?} != {vb:?}")),
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                diff_paths(&format!("{path}[{i}]"), va, vb, out);
            }
        }
        _ if a != b => out.push(format!("{path}: {a} != {b}")),
        _ => {}
    }
}

#[test]
fn client_event_dump_round_trips() {
    let text = std::fs::read_to_string(reference_dir().join("seed_flow_events.jsonl")).unwrap();
    let mut kinds = std::collections::BTreeSet::new();
    for (i, line) in text.lines().enumerate() {
        let original = without_nulls(&serde_json::from_str(line).unwrap());
        let event: Event = roundtrip(&format!("seed_flow_events.jsonl line {}", i + 1), &original);
        assert!(
            !matches!(event, Event::Unknown(_)),
            "line {}: unmodelled kind",
            i + 1
        );
        assert!(!event.id().is_empty());
        kinds.insert(event.kind().to_string());
    }
    for k in [
        "SystemPromptEvent",
        "MessageEvent",
        "ActionEvent",
        "ObservationEvent",
    ] {
        assert!(kinds.contains(k), "{k} missing from the capture");
    }
}

#[test]
fn event_samples_round_trip() {
    let dir = reference_dir().join("samples");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".json") || name.starts_with("default_tools") {
            continue;
        }
        let original =
            without_nulls(&serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap());
        let _: Event = roundtrip(&name, &original);
        count += 1;
    }
    assert!(count >= 15, "only {count} samples found");
}

#[test]
fn every_trace_body_and_frame_round_trips() {
    let text = std::fs::read_to_string(reference_dir().join("seed_flow_trace.jsonl")).unwrap();
    let (mut frames, mut bodies) = (0, 0);
    let mut last_request = String::new();
    for line in text.lines() {
        let record: Value = serde_json::from_str(line).unwrap();
        let kind = record["type"].as_str().unwrap();
        let start = record["start"].as_str().unwrap_or_default().to_string();
        let body = &record["json"];
        match kind {
            "ws_text" => {
                let event: Event = roundtrip("websocket frame", body);
                assert!(
                    !matches!(event, Event::Unknown(_)),
                    "unmodelled frame {body}"
                );
                frames += 1;
            }
            "http_request" => {
                last_request = start.clone();
                if body.is_null() {
                    continue;
                }
                bodies += 1;
                if start.contains("/api/bash/start_bash_command") {
                    roundtrip::<ExecuteBashRequest>(&start, body);
                } else if start.starts_with("POST /api/conversations ") {
                    roundtrip::<StartConversationRequest>(&start, body);
                } else if start.contains("/events ") {
                    roundtrip::<SendMessageRequest>(&start, body);
                } else {
                    panic!("unclassified request body: {start}");
                }
            }
            "http_response" => {
                if body.is_null() {
                    continue;
                }
                bodies += 1;
                let req = last_request.as_str();
                if req.starts_with("GET /health") {
                    roundtrip::<HealthStatus>(req, body);
                } else if req.contains("/api/bash/start_bash_command") {
                    let tagged: BashEvent = roundtrip(req, body);
                    assert!(matches!(tagged, BashEvent::Command(BashCommand { .. })));
                } else if req.contains("/api/bash/bash_events/search") {
                    let page: Page<BashEvent> = roundtrip(req, body);
                    assert!(page.items.iter().all(|e| matches!(e, BashEvent::Output(_))));
                } else if req.starts_with("POST /api/conversations ") {
                    roundtrip::<ConversationInfo>(req, body);
                } else if req.contains("/events/search") {
                    let page: Page<Event> = roundtrip(req, body);
                    assert!(page.items.iter().all(|e| !matches!(e, Event::Unknown(_))));
                } else {
                    roundtrip::<Success>(req, body);
                }
            }
            other => panic!("unknown record type {other}"),
        }
    }
    assert!(
        frames >= 25 && bodies >= 25,
        "too few records: {frames} frames, {bodies} bodies"
    );
}
