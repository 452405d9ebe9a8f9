//! [`RemoteConversation`]: a conversation on an agent server, driven from a
//! synchronous program. Events arrive over the event socket into a local
//! cache (see [`super::socket`]); `run()` blocks until the server's
//! end-of-run `full_state` arrives, with REST polling as a fallback.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::socket::{fetch_all_events, EventCallback, EventSocket, Shared, DEFAULT_KEEPALIVE};
use super::workspace::RemoteWorkspace;
use crate::agent::confirmation::ConfirmationPolicy;
use crate::agent::spec::AgentSpec;
use crate::client::http::HttpClient;
use crate::conversation::title;
use crate::llm::{ConversationStats, Llm};
use crate::wire::{ConversationInfo, Event, ExecutionStatus, Success};
use crate::{Error, Result};

/// How long `run()` waits by default.
pub const DEFAULT_RUN_TIMEOUT: Duration = Duration::from_secs(3600);

/// Settings of a [`RemoteConversation`].
pub struct RemoteConversationBuilder {
    http: HttpClient,
    working_dir: String,
    agent: AgentSpec,
    conversation_id: Option<String>,
    max_iterations: Option<u64>,
    confirmation_policy: Option<ConfirmationPolicy>,
    callbacks: Vec<EventCallback>,
    delete_on_close: bool,
    keepalive: Duration,
}

impl RemoteConversationBuilder {
    /// Attach to (or create with) this id.
    pub fn conversation_id(mut self, id: impl Into<String>) -> Self {
        self.conversation_id = Some(id.into());
        self
    }

    /// Step limit of one run (server default 500).
    pub fn max_iterations(mut self, n: u64) -> Self {
        self.max_iterations = Some(n);
        self
    }

    /// Which actions wait for approval.
    pub fn confirmation_policy(mut self, policy: ConfirmationPolicy) -> Self {
        self.confirmation_policy = Some(policy);
        self
    }

    /// A callback for every event, called in order on its own thread.
    pub fn on_event(mut self, f: impl FnMut(&Event) + Send + 'static) -> Self {
        self.callbacks.push(Box::new(f));
        self
    }

    /// Delete the conversation on the server in `close()` (default true, as
    /// the reference).
    pub fn delete_on_close(mut self, on: bool) -> Self {
        self.delete_on_close = on;
        self
    }

    /// How long the event socket may be silent before the client pings the
    /// server; silent for twice as long, it is reopened (default 10 s). This
    /// is what notices a connection that died without being closed.
    pub fn socket_keepalive(mut self, interval: Duration) -> Self {
        self.keepalive = interval;
        self
    }

    /// Creates (or attaches to) the conversation and connects its event socket.
    pub fn build(self) -> Result<RemoteConversation> {
        let existing = match &self.conversation_id {
            Some(id) => match self.http.json::<ConversationInfo>(
                "GET",
                &format!("/api/conversations/{id}"),
                &[],
                None::<&()>,
            ) {
                Ok(info) => Some(info),
                Err(e) if e.status() == Some(404) => None,
                Err(e) => return Err(e),
            },
            None => None,
        };
        let info = match existing {
            Some(info) => info,
            None => {
                let mut body = json!({
                    "agent": self.agent.to_value_exposed(),
                    "workspace": {"working_dir": self.working_dir, "kind": "LocalWorkspace"},
                });
                if let Some(id) = &self.conversation_id {
                    body["conversation_id"] = json!(id);
                }
                if let Some(n) = self.max_iterations {
                    body["max_iterations"] = json!(n);
                }
                if let Some(p) = &self.confirmation_policy {
                    body["confirmation_policy"] = serde_json::to_value(p).unwrap_or_default();
                }
                self.http
                    .json("POST", "/api/conversations", &[], Some(&body))?
            }
        };
        let shared = Shared::new();
        let initial = fetch_all_events(&self.http, &info.id)?;
        let socket = EventSocket::start(
            self.http.clone(),
            info.id.clone(),
            Arc::clone(&shared),
            self.callbacks,
            initial,
            self.keepalive,
        )?;
        Ok(RemoteConversation {
            http: self.http,
            id: info.id,
            agent: self.agent,
            shared,
            socket: Some(socket),
            delete_on_close: self.delete_on_close,
        })
    }
}

/// A conversation on an agent server.
pub struct RemoteConversation {
    http: HttpClient,
    id: String,
    agent: AgentSpec,
    shared: Arc<Shared>,
    socket: Option<EventSocket>,
    delete_on_close: bool,
}

/// A snapshot of a remote conversation's state.
#[derive(Debug, Clone)]
pub struct RemoteState {
    /// Conversation id.
    pub id: String,
    /// Status.
    pub execution_status: ExecutionStatus,
    /// Events received so far, in order.
    pub events: Vec<Arc<Event>>,
    /// LLM usage.
    pub stats: ConversationStats,
}

impl RemoteState {
    /// The status.
    pub fn execution_status(&self) -> ExecutionStatus {
        self.execution_status
    }

    /// The events (index, slice, iterate).
    pub fn events(&self) -> &[Arc<Event>] {
        &self.events
    }
}

impl RemoteConversation {
    /// Settings for a conversation of `agent` on the workspace's server.
    pub fn builder(workspace: &RemoteWorkspace, agent: AgentSpec) -> RemoteConversationBuilder {
        RemoteConversationBuilder {
            http: workspace.http().clone(),
            working_dir: workspace.working_dir().to_string(),
            agent,
            conversation_id: None,
            max_iterations: None,
            confirmation_policy: None,
            callbacks: Vec::new(),
            delete_on_close: true,
            keepalive: DEFAULT_KEEPALIVE,
        }
    }

    /// The conversation id.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn path(&self, rest: &str) -> String {
        format!("/api/conversations/{}{rest}", self.id)
    }

    /// Sends a user message (does not run the agent).
    pub fn send_message(&self, text: &str) -> Result<()> {
        let body =
            json!({"role": "user", "content": [{"type": "text", "text": text}], "run": false});
        let _: Success = self
            .http
            .json("POST", &self.path("/events"), &[], Some(&body))?;
        Ok(())
    }

    /// Starts a run and returns at once (a run already in progress is fine).
    pub fn start_run(&self) -> Result<()> {
        match self.http.call("POST", &self.path("/run"), &[], None) {
            Ok(_) => Ok(()),
            Err(e) if e.status() == Some(409) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Runs the agent and waits (up to [`DEFAULT_RUN_TIMEOUT`]) until it stops:
    /// finished, paused, waiting for confirmation, stuck or failed. A run that
    /// ends in `error` or `stuck` is an [`Error::Run`].
    pub fn run(&self) -> Result<ExecutionStatus> {
        self.run_with_timeout(DEFAULT_RUN_TIMEOUT)
    }

    /// [`run`](Self::run) with an explicit timeout.
    pub fn run_with_timeout(&self, timeout: Duration) -> Result<ExecutionStatus> {
        let seen_before = self.shared.with(|c| c.full_states);
        self.start_run()?;
        let started = Instant::now();
        let mut last_poll = Instant::now();
        let mut saw_running = false;
        let status = loop {
            let done = {
                let cache = self.shared.cache.lock().unwrap_or_else(|p| p.into_inner());
                let (cache, _) = self
                    .shared
                    .changed
                    .wait_timeout_while(cache, Duration::from_millis(250), |c| {
                        c.full_states == seen_before && c.fatal.is_none()
                    })
                    .unwrap_or_else(|p| p.into_inner());
                if let Some((code, reason)) = &cache.fatal {
                    return Err(Error::Closed {
                        code: *code,
                        reason: reason.clone(),
                    });
                }
                match (&cache.last_full_status, cache.full_states > seen_before) {
                    (Some(s), true) if s != "running" => Some(s.clone()),
                    _ => None,
                }
            };
            if let Some(s) = done {
                break s;
            }
            if started.elapsed() > timeout {
                return Err(Error::Timeout(format!(
                    "the run did not end within {timeout:?}"
                )));
            }
            // Fallback: poll over REST in case the socket is down.
            if last_poll.elapsed() >= Duration::from_secs(1) {
                last_poll = Instant::now();
                if let Ok(info) = self.info() {
                    match info.execution_status {
                        ExecutionStatus::Running => saw_running = true,
                        s @ (ExecutionStatus::Error | ExecutionStatus::Stuck) => {
                            break s.as_str().to_string()
                        }
                        s if saw_running || started.elapsed() > Duration::from_secs(30) => {
                            break s.as_str().to_string()
                        }
                        _ => {}
                    }
                }
            }
        };
        let status: ExecutionStatus =
            serde_json::from_value(json!(status)).unwrap_or(ExecutionStatus::Error);
        match status {
            ExecutionStatus::Error | ExecutionStatus::Stuck => {
                let (code, detail) = self
                    .state()
                    .events
                    .iter()
                    .rev()
                    .find_map(|e| match e.as_ref() {
                        Event::ConversationError(c) => Some((c.code.clone(), c.detail.clone())),
                        _ => None,
                    })
                    .unwrap_or_else(|| {
                        (
                            status.as_str().to_string(),
                            format!("the run ended {status}"),
                        )
                    });
                Err(Error::Run { code, detail })
            }
            s => Ok(s),
        }
    }

    /// Asks the agent to stop after its current step.
    pub fn pause(&self) -> Result<()> {
        self.http
            .call("POST", &self.path("/pause"), &[], None)
            .map(|_| ())
    }

    /// Accepts (runs) or rejects the actions waiting for approval.
    pub fn respond_to_confirmation(&self, accept: bool, reason: &str) -> Result<()> {
        let body = json!({"accept": accept, "reason": reason});
        self.http
            .call(
                "POST",
                &self.path("/events/respond_to_confirmation"),
                &[],
                Some(&body),
            )
            .map(|_| ())
    }

    /// Changes which actions wait for approval.
    pub fn set_confirmation_policy(&self, policy: &ConfirmationPolicy) -> Result<()> {
        let body = json!({"policy": policy});
        self.http
            .call("POST", &self.path("/confirmation_policy"), &[], Some(&body))
            .map(|_| ())
    }

    /// The server's description of the conversation.
    pub fn info(&self) -> Result<ConversationInfo> {
        self.http.json("GET", &self.path(""), &[], None::<&()>)
    }

    /// A snapshot of the state as this client knows it.
    pub fn state(&self) -> RemoteState {
        self.shared.with(|c| RemoteState {
            id: self.id.clone(),
            execution_status: c
                .state
                .get("execution_status")
                .and_then(|v| serde_json::from_value(v.clone()).ok())
                .unwrap_or_default(),
            events: c.events.clone(),
            stats: c
                .state
                .get("stats")
                .and_then(|v| serde_json::from_value(v.clone()).ok())
                .unwrap_or_default(),
        })
    }

    /// LLM usage per usage id; `.combined_metrics().accumulated_cost` is the total.
    pub fn stats(&self) -> ConversationStats {
        self.state().stats
    }

    /// A title of at most `max_length` characters, written on this side by
    /// `llm` (the agent's model when `None`), as the reference client does.
    pub fn generate_title(&self, max_length: usize, llm: Option<&Llm>) -> Result<String> {
        let stored = fetch_all_events(&self.http, &self.id)?;
        let events: Vec<Arc<Event>> = stored.into_iter().map(Arc::new).collect();
        let first = title::first_user_text(&events)
            .ok_or_else(|| Error::InvalidInput("no user message to make a title from".into()))?;
        let own;
        let llm = match llm {
            Some(l) => l,
            None => {
                own = Llm::new(self.agent.llm.clone());
                &own
            }
        };
        Ok(title::generate(&first, max_length, Some(llm)))
    }

    /// Cuts the event socket's current connection (it reconnects and
    /// resynchronises); for tests of reconnection.
    pub fn drop_socket_connection(&self) {
        if let Some(s) = &self.socket {
            s.drop_connection();
        }
    }

    /// Stops the event socket and, unless disabled, deletes the conversation
    /// on the server.
    pub fn close(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        if let Some(mut s) = self.socket.take() {
            s.stop();
        }
        if self.delete_on_close {
            self.delete_on_close = false;
            match self.http.call("DELETE", &self.path(""), &[], None) {
                Ok(_) => {}
                Err(e) if e.status() == Some(404) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl Drop for RemoteConversation {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}
