//! The "Local Agent Server" flow in Rust, step by step:
//!
//! 1. start an agent server as a child process and wait for `GET /health`;
//! 2. run `pwd` in its workspace;
//! 3. create a conversation (default tools) with an event callback;
//! 4. send a task, generate a title, run it; send a second task, run again;
//! 5. print the events, the state updates and the cost; close.
//!
//! ```text
//! cargo run --release --example local_server
//! LLM_API_KEY=... LLM_MODEL=anthropic/claude-sonnet-4-5-20250929 cargo run --release --example local_server
//! AGENT_SERVER_URL=http://127.0.0.1:8000 cargo run --release --example local_server
//! ```
//!
//! Without `LLM_API_KEY` the built-in offline model `scripted/demo` plays the
//! agent, so this runs on a machine without network. Without
//! `AGENT_SERVER_URL` the example re-runs itself as the server
//! (`<example> serve --host 127.0.0.1 --port P`, `LOG_JSON=true`).

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openhands_sync::agent::spec::AgentSpec;
use openhands_sync::client::{ManagedServer, RemoteConversation, RemoteWorkspace, ServerCommand};
use openhands_sync::llm::{Llm, LlmConfig};
use openhands_sync::wire::Event;

fn main() -> ExitCode {
    openhands_sync::cli::serve_if_requested();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("local_server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn llm_config() -> LlmConfig {
    match LlmConfig::from_env() {
        Some(c) => {
            println!("Using model {} from LLM_MODEL/LLM_API_KEY", c.model);
            c
        }
        None => {
            println!("LLM_API_KEY is not set: using the built-in offline model scripted/demo.");
            LlmConfig::new("scripted/demo")
        }
    }
}

fn describe(event: &Event) -> String {
    match event {
        Event::StateUpdate(u) => format!("ConversationStateUpdateEvent({})", u.key),
        Event::Action(a) => format!("ActionEvent({})", a.tool_name),
        Event::Observation(o) => format!("ObservationEvent({})", o.tool_name),
        Event::Message(m) => format!("MessageEvent({:?})", m.meta.source),
        other => other.kind().to_string(),
    }
}

fn run() -> openhands_sync::Result<()> {
    // 1. A server: an existing one, or our own child process.
    let managed;
    let url = match std::env::var("AGENT_SERVER_URL") {
        Ok(url) => {
            println!("Using the agent server at {url}");
            url
        }
        Err(_) => {
            println!("Starting an agent server ...");
            managed = ManagedServer::builder()
                .command(ServerCommand::CurrentExe)
                .start()?;
            println!("Agent server is healthy at {}", managed.url());
            managed.url().to_string()
        }
    };

    // 2. Its workspace.
    let workspace = RemoteWorkspace::builder(&url)
        .session_key(std::env::var("SESSION_API_KEY").unwrap_or_default())
        .build();
    let result = workspace.execute_command("pwd")?;
    println!(
        "Command '{}' completed with exit code {}",
        result.command, result.exit_code
    );
    println!("Output: {}", result.stdout.trim());

    // 3. A conversation with the default tools and a callback.
    let llm = llm_config().with_usage_id("agent");
    let title_llm = Llm::new(llm.clone().with_usage_id("title"));
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&seen);
    let conversation = RemoteConversation::builder(&workspace, AgentSpec::default_for(llm))
        .on_event(move |event| {
            counter.fetch_add(1, Ordering::SeqCst);
            println!("  [event] {} {}", event.timestamp(), describe(event));
        })
        .build()?;
    println!("Conversation {}", conversation.id());

    // 4. Two tasks.
    conversation.send_message(
        "Read the current repo and write 3 facts about the project into FACTS.txt.",
    )?;
    let title = conversation.generate_title(60, Some(&title_llm))?;
    println!("Title: {title}");
    let status = conversation.run()?;
    println!("First run ended: {status}");
    wait_for_quiet(&conversation, &seen);

    conversation.send_message("Great! Now delete that file.")?;
    let status = conversation.run()?;
    println!("Second run ended: {status}");
    wait_for_quiet(&conversation, &seen);

    // 5. What happened.
    let state = conversation.state();
    println!("Conversation id: {}", state.id);
    println!("Execution status: {}", state.execution_status());
    let events = state.events();
    println!("Number of events: {}", events.len());
    println!("Last 5 events:");
    for e in &events[events.len().saturating_sub(5)..] {
        println!("  {} {}", e.timestamp(), describe(e));
    }
    println!("Conversation state updates:");
    for e in events.iter().filter_map(|e| e.as_state_update()) {
        println!("  {} key={}", e.meta.timestamp, e.key);
    }
    let cost = conversation.stats().combined_metrics().accumulated_cost;
    println!("EXAMPLE_COST: {cost}");
    conversation.close()?;
    println!("Done.");
    Ok(())
}

/// Waits until the callback has seen every event the client holds and no new
/// one came for half a second (at most 10 s).
fn wait_for_quiet(conversation: &RemoteConversation, seen: &AtomicUsize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = (usize::MAX, Instant::now());
    while Instant::now() < deadline {
        let n = seen.load(Ordering::SeqCst);
        if n != last.0 {
            last = (n, Instant::now());
        } else if n >= conversation.state().events.len()
            && last.1.elapsed() > Duration::from_millis(500)
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
