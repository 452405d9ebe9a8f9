//! The agent runtime end to end: `LocalConversation` with a fake
//! OpenAI-compatible server, a fake Anthropic endpoint, and the offline
//! scripted model, plus LLM retries and failures.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::fake_llm::{openai_answer, FakeLlm, Reply};
use common::TempDir;
use openhands_sync::agent::confirmation::ConfirmationPolicy;
use openhands_sync::conversation::LocalConversation;
use openhands_sync::llm::{CompletionRequest, Llm, LlmConfig, LlmErrorKind};
use openhands_sync::wire::{Event, ExecutionStatus, Message, Observation, Role};
use serde_json::json;

fn kinds(events: &[Arc<Event>]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e.as_ref() {
            Event::StateUpdate(u) => format!("CSU:{}", u.key),
            Event::Action(a) => format!("Action:{}", a.tool_name),
            other => other.kind().to_string(),
        })
        .collect()
}

fn fast_retries(mut c: LlmConfig) -> LlmConfig {
    c.retry_min_wait = 0.01;
    c.retry_max_wait = 0.05;
    c.retry_multiplier = 0.01;
    c
}

/// Runs the seed task (write FACTS.txt, then delete it) and checks the result.
fn run_seed_task(llm: Llm, dir: &TempDir) -> LocalConversation {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let conv = LocalConversation::builder(llm)
        .working_dir(dir.path())
        .persistence_dir(dir.path().join(".state"))
        .on_event(move |e| sink.lock().unwrap().push(e.id().to_string()))
        .build()
        .unwrap();
    conv.send_message("Read the current repo and write 3 facts about the project into FACTS.txt.")
        .unwrap();
    assert_eq!(conv.run().unwrap(), ExecutionStatus::Finished);
    let facts = std::fs::read_to_string(dir.path().join("FACTS.txt")).unwrap();
    assert_eq!(facts.lines().count(), 3);
    let first_run = kinds(&conv.events());
    assert_eq!(first_run[0], "SystemPromptEvent");
    assert_eq!(first_run[1], "MessageEvent");
    assert_eq!(first_run[2], "CSU:last_user_message_id");
    assert_eq!(first_run[3], "CSU:execution_status");
    for needed in [
        "Action:terminal",
        "ObservationEvent",
        "Action:file_editor",
        "Action:finish",
        "CSU:stats",
    ] {
        assert!(
            first_run.iter().any(|k| k == needed),
            "{needed} missing from {first_run:?}"
        );
    }
    assert_eq!(first_run.last().unwrap(), "CSU:execution_status");

    conv.send_message("Great! Now delete that file.").unwrap();
    assert_eq!(conv.run().unwrap(), ExecutionStatus::Finished);
    assert!(!dir.path().join("FACTS.txt").exists());
    // Every observation answers the action before it.
    let events = conv.events();
    for e in &events {
        if let Event::Observation(o) = e.as_ref() {
            assert!(
                events.iter().any(|a| a.id() == o.action_id),
                "orphan observation"
            );
        }
    }
    // Callbacks saw every event, in order.
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen.lock().unwrap().len() < events.len() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let ids: Vec<String> = events.iter().map(|e| e.id().to_string()).collect();
    assert_eq!(*seen.lock().unwrap(), ids);
    conv
}

#[test]
fn seed_task_with_an_openai_compatible_server() {
    let fake = FakeLlm::seed();
    let dir = TempDir::new("agent-openai");
    let cfg = LlmConfig::new("openai/gpt-4o")
        .with_api_key("sk-test-openai")
        .with_base_url(format!("{}/v1", fake.url))
        .with_usage_id("agent");
    let conv = run_seed_task(Llm::new(cfg), &dir);
    let cost = conv.stats().combined_metrics().accumulated_cost;
    assert!(cost > 0.0, "gpt-4o is in the price table: {cost}");
    let reqs = fake.requests.lock().unwrap();
    assert!(reqs.iter().all(|(p, _)| p == "/v1/chat/completions"));
    let body = &reqs[0].1;
    assert_eq!(body["model"], "gpt-4o");
    let tools: Vec<&str> = body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        tools,
        ["terminal", "file_editor", "task_tracker", "finish", "think"]
    );
    assert_eq!(body["messages"][0]["role"], "system");
    // The reference's schema for the terminal's arguments.
    let props = &body["tools"][0]["function"]["parameters"];
    assert_eq!(props["required"], json!(["command"]));
    for p in [
        "security_risk",
        "summary",
        "command",
        "is_input",
        "timeout",
        "reset",
    ] {
        assert!(props["properties"].get(p).is_some(), "terminal lacks {p}");
    }
    assert!(body["tools"][3]["function"]["parameters"]["properties"]
        .get("security_risk")
        .is_none());
    // The persisted conversation has the same events, and no key in clear.
    let stored = std::fs::read_dir(dir.path().join(".state/events"))
        .unwrap()
        .count();
    assert_eq!(stored, conv.events().len());
    let state = std::fs::read_to_string(dir.path().join(".state/base_state.json")).unwrap();
    assert!(!state.contains("sk-test-openai") && state.contains("\"finished\""));
}

#[test]
fn seed_task_with_an_anthropic_endpoint() {
    let fake = FakeLlm::seed();
    let dir = TempDir::new("agent-anthropic");
    let cfg = LlmConfig::new("anthropic/claude-sonnet-4-5")
        .with_api_key("sk-ant-test")
        .with_base_url(fake.url.clone());
    let conv = run_seed_task(Llm::new(cfg), &dir);
    assert!(conv.stats().combined_metrics().accumulated_cost > 0.0);
    let reqs = fake.requests.lock().unwrap();
    assert!(reqs.iter().all(|(p, _)| p == "/v1/messages"));
    let body = &reqs[1].1;
    assert_eq!(body["model"], "claude-sonnet-4-5");
    assert!(
        body["system"][0]["cache_control"].is_object(),
        "prompt caching marks the system prompt"
    );
    assert_eq!(body["tools"][0]["name"], "terminal");
    assert!(body["tools"][0]["input_schema"]["properties"]["command"].is_object());
    // Tool results go back as tool_result blocks in user turns.
    assert!(body["messages"].to_string().contains("tool_result"));
}

#[test]
fn seed_task_with_the_offline_scripted_model() {
    let dir = TempDir::new("agent-scripted");
    std::fs::write(dir.path().join("README.md"), "# demo\n").unwrap();
    let conv = run_seed_task(Llm::new(LlmConfig::new("scripted/demo")), &dir);
    let facts = conv
        .events()
        .iter()
        .find_map(|e| match e.as_ref() {
            Event::Observation(o) => match &o.observation {
                Observation::FileEditor(f) => f.new_content.clone(),
                _ => None,
            },
            _ => None,
        })
        .unwrap();
    assert!(
        facts.contains(dir.path().to_str().unwrap()),
        "facts come from what the model saw: {facts}"
    );
    assert!(facts.contains("README.md"));
    let title = conv.generate_title(60, None).unwrap();
    assert!(!title.is_empty() && title.chars().count() <= 60, "{title}");
}

#[test]
fn retries_429_twice_then_succeeds() {
    let fake = FakeLlm::with(|_, body, n| {
        if n <= 2 {
            let mut r = Reply::json(429, json!({"error": {"message": "slow down"}}));
            r.headers.push(("Retry-After".into(), "0".into()));
            r
        } else {
            Reply::json(200, openai_answer(body))
        }
    });
    let cfg = fast_retries(LlmConfig::new("openai/gpt-4o").with_base_url(fake.url.clone()));
    let llm = Llm::new(cfg);
    let req = CompletionRequest {
        messages: vec![Message::text(Role::User, "hi")],
        tools: Vec::new(),
    };
    let c = llm.complete(&req).unwrap();
    assert_eq!(c.message.joined_text(), "Facts about the project");
    assert_eq!(fake.request_count(), 3);
    assert_eq!(llm.metrics().response_latencies.len(), 1);
}

#[test]
fn gives_up_after_num_retries_and_reports_timeouts() {
    let fake = FakeLlm::with(|_, _, _| Reply::json(503, json!({"error": "down"})));
    let mut cfg = fast_retries(LlmConfig::new("openai/x").with_base_url(fake.url.clone()));
    cfg.num_retries = 2;
    let err = Llm::new(cfg)
        .complete(&CompletionRequest::default())
        .unwrap_err();
    assert_eq!(err.kind, LlmErrorKind::ServiceUnavailable);
    assert_eq!(fake.request_count(), 3);

    let slow = FakeLlm::with(|_, body, _| {
        let mut r = Reply::json(200, openai_answer(body));
        r.delay = Duration::from_secs(3);
        r
    });
    let mut cfg = fast_retries(LlmConfig::new("openai/x").with_base_url(slow.url.clone()));
    cfg.timeout = Some(0.3);
    cfg.num_retries = 1;
    let started = Instant::now();
    let err = Llm::new(cfg)
        .complete(&CompletionRequest::default())
        .unwrap_err();
    assert_eq!(err.kind, LlmErrorKind::Timeout, "{err}");
    assert_eq!(err.code(), "LLMTimeoutError");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(slow.request_count(), 2);
}

#[test]
fn bad_json_from_the_provider_ends_the_run_with_a_clear_error_event() {
    let fake = FakeLlm::with(|_, _, _| Reply {
        status: 200,
        headers: Vec::new(),
        body: "{\"choices\": [oops".into(),
        delay: Duration::ZERO,
    });
    let dir = TempDir::new("agent-badjson");
    let cfg = LlmConfig::new("openai/gpt-4o").with_base_url(fake.url.clone());
    let conv = LocalConversation::builder(Llm::new(cfg))
        .working_dir(dir.path())
        .build()
        .unwrap();
    conv.send_message("do something").unwrap();
    let err = conv.run().unwrap_err();
    assert!(err.to_string().contains("not valid JSON"), "{err}");
    assert_eq!(conv.execution_status(), ExecutionStatus::Error);
    let last_error = conv.events().iter().rev().find_map(|e| match e.as_ref() {
        Event::ConversationError(c) => Some(c.clone()),
        _ => None,
    });
    let ce = last_error.expect("a ConversationErrorEvent");
    assert_eq!(ce.code, "LLMNoResponseError");
    assert!(ce.detail.contains("not valid JSON"));

    let unauthorized =
        FakeLlm::with(|_, _, _| Reply::json(401, json!({"error": {"message": "bad key"}})));
    let cfg = LlmConfig::new("openai/gpt-4o").with_base_url(unauthorized.url.clone());
    let conv = LocalConversation::builder(Llm::new(cfg))
        .working_dir(dir.path())
        .build()
        .unwrap();
    conv.send_message("hi").unwrap();
    match conv.run().unwrap_err() {
        openhands_sync::Error::Run { code, .. } => assert_eq!(code, "LLMAuthenticationError"),
        other => panic!("unexpected {other}"),
    }
    assert_eq!(
        unauthorized.request_count(),
        1,
        "authentication errors are not retried"
    );
}

#[test]
fn always_confirm_waits_then_accept_or_reject() {
    let dir = TempDir::new("agent-confirm");
    let conv = LocalConversation::builder(Llm::new(LlmConfig::new("scripted/demo")))
        .working_dir(dir.path())
        .confirmation_policy(ConfirmationPolicy::AlwaysConfirm)
        .build()
        .unwrap();
    conv.send_message("write 3 facts into FACTS.txt").unwrap();
    assert_eq!(conv.run().unwrap(), ExecutionStatus::WaitingForConfirmation);
    let before = conv
        .events()
        .iter()
        .filter(|e| matches!(e.as_ref(), Event::Observation(_)))
        .count();
    assert_eq!(before, 0, "nothing ran before approval");
    // Reject: the action gets a rejection, the model hears about it.
    conv.reject_pending_actions("not now").unwrap();
    assert_eq!(conv.execution_status(), ExecutionStatus::Idle);
    assert!(conv
        .events()
        .iter()
        .any(|e| matches!(e.as_ref(), Event::UserReject(r) if r.rejection_reason == "not now")));
    // Ask again: the action waits; running again approves it and the rest
    // of the task runs without asking once the policy is relaxed.
    conv.send_message("write 3 facts into FACTS.txt").unwrap();
    assert_eq!(conv.run().unwrap(), ExecutionStatus::WaitingForConfirmation);
    conv.set_confirmation_policy(ConfirmationPolicy::NeverConfirm)
        .unwrap();
    assert_eq!(conv.run().unwrap(), ExecutionStatus::Finished);
    assert!(dir.path().join("FACTS.txt").exists());
    let observed = conv
        .events()
        .iter()
        .filter(|e| matches!(e.as_ref(), Event::Observation(_)))
        .count();
    assert!(observed >= 3, "the approved action and the rest ran");
}

#[test]
fn pause_stops_between_steps_and_max_iterations_errors() {
    let dir = TempDir::new("agent-pause");
    let slow = FakeLlm::with(|_, body, _| {
        let mut r = Reply::json(200, openai_answer(body));
        r.delay = Duration::from_millis(300);
        r
    });
    let cfg = LlmConfig::new("openai/gpt-4o").with_base_url(slow.url.clone());
    let conv = Arc::new(
        LocalConversation::builder(Llm::new(cfg))
            .working_dir(dir.path())
            .build()
            .unwrap(),
    );
    conv.send_message("write 3 facts into FACTS.txt").unwrap();
    let runner = {
        let conv = Arc::clone(&conv);
        std::thread::spawn(move || conv.run())
    };
    std::thread::sleep(Duration::from_millis(450));
    conv.pause().unwrap();
    assert_eq!(runner.join().unwrap().unwrap(), ExecutionStatus::Paused);
    assert!(conv.events().iter().any(|e| e.kind() == "PauseEvent"));
    let finished_early = kinds(&conv.events()).iter().any(|k| k == "Action:finish");
    assert!(
        !finished_early,
        "the run stopped between steps, before finish"
    );
    assert_eq!(
        conv.run().unwrap(),
        ExecutionStatus::Finished,
        "run resumes a paused conversation"
    );

    let limited = LocalConversation::builder(Llm::new(LlmConfig::new("scripted/demo")))
        .working_dir(dir.path())
        .max_iterations(1)
        .build()
        .unwrap();
    limited
        .send_message("write 3 facts into FACTS.txt")
        .unwrap();
    match limited.run().unwrap_err() {
        openhands_sync::Error::Run { code, .. } => assert_eq!(code, "MaxIterationsReached"),
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn a_stored_conversation_reopens_and_continues() {
    let dir = TempDir::new("agent-resume");
    let store = dir.path().join(".state");
    let id;
    {
        let conv = LocalConversation::builder(Llm::new(
            LlmConfig::new("scripted/demo").with_usage_id("agent"),
        ))
        .working_dir(dir.path())
        .persistence_dir(&store)
        .build()
        .unwrap();
        conv.send_message("write 3 facts into FACTS.txt").unwrap();
        conv.run().unwrap();
        id = conv.id();
    }
    let n_before = std::fs::read_dir(store.join("events")).unwrap().count();
    let conv = LocalConversation::open(
        &store,
        Llm::new(LlmConfig::new("scripted/demo").with_usage_id("agent")),
        Vec::new(),
    )
    .unwrap();
    assert_eq!(conv.id(), id);
    assert_eq!(conv.events().len(), n_before);
    assert_eq!(conv.execution_status(), ExecutionStatus::Finished);
    conv.send_message("now delete it").unwrap();
    assert_eq!(conv.run().unwrap(), ExecutionStatus::Finished);
    assert!(!dir.path().join("FACTS.txt").exists());
    assert!(
        conv.stats().usage_to_metrics["agent"].token_usages.len() >= 6,
        "metrics continue across reopen"
    );
}
