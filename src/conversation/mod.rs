//! Conversations: state, the event log and the run loop, shared by
//! [`LocalConversation`] (in-process) and the server.
//!
//! A [`Conversation`] keeps its state and events behind one short-lived lock:
//! events are stored (on disk first, when the conversation has a directory)
//! and then handed to subscribers, in order, while that lock is held, so every
//! subscriber sees the same order as the log. The agent runs outside the lock:
//! reading a conversation never waits for a step.

pub mod local;
pub mod state;
pub mod store;
pub mod title;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use serde_json::{json, Map};

pub use local::LocalConversation;
pub use state::ConversationState;

use crate::agent::confirmation::ConfirmationPolicy;
use crate::agent::stuck::{self, Verdict};
use crate::agent::{environment_note, unmatched_actions, Agent, StepError, StepHost};
use crate::llm::{LlmError, Metrics};
use crate::wire::{
    ConversationErrorEvent, ConversationStateUpdateEvent, ErrorClassification, Event, EventMeta,
    ExecutionStatus, Message, MessageEvent, PlainEvent, Source, UserRejectObservation,
};
use crate::{Error, Result};
use store::EventLog;

/// An event as handed to subscribers: serialised at most once, however many
/// sockets send it.
pub struct Published {
    /// The event.
    pub event: Arc<Event>,
    json: std::sync::OnceLock<Vec<u8>>,
}

impl Published {
    fn new(event: Arc<Event>) -> Arc<Self> {
        Arc::new(Published {
            event,
            json: std::sync::OnceLock::new(),
        })
    }

    /// The event's JSON (null fields omitted), computed on first use.
    pub fn json(&self) -> &[u8] {
        self.json
            .get_or_init(|| serde_json::to_vec(self.event.as_ref()).unwrap_or_default())
    }
}

impl std::ops::Deref for Published {
    type Target = Event;
    fn deref(&self) -> &Event {
        &self.event
    }
}

/// A new subscription: its id (for [`Conversation::unsubscribe`]), the
/// `full_state` to send first, stored events to replay, and the live queue.
pub struct Subscription {
    /// Subscriber id.
    pub id: u64,
    /// The state at subscription time.
    pub first: Arc<Event>,
    /// Stored events selected for replay, oldest first.
    pub replay: Vec<Arc<Event>>,
    /// Events from now on.
    pub events: Receiver<Arc<Published>>,
}

/// Where a subscriber's events go; a full queue drops the subscriber.
struct Subscriber {
    id: u64,
    tx: Sender<Arc<Published>>,
}

/// The parts of an agent readable while it runs a step.
struct AgentInfo {
    llm: crate::llm::Llm,
}

struct Inner {
    state: ConversationState,
    log: EventLog,
    subscribers: Vec<Subscriber>,
}

/// A conversation's state, events, subscribers and agent.
pub struct Conversation {
    dir: Option<PathBuf>,
    durable: bool,
    inner: Mutex<Inner>,
    /// Held for a whole step while the agent runs; never taken by readers.
    agent: Mutex<Option<Agent>>,
    /// What other threads need from the agent, without waiting for a step.
    agent_info: Mutex<Option<AgentInfo>>,
    run_lock: Mutex<()>,
    next_subscriber: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not wedge the conversation: keep the data.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Conversation {
    /// A new conversation; stored under `dir` when given (state written now).
    pub fn create(
        state: ConversationState,
        dir: Option<PathBuf>,
        durable: bool,
    ) -> Result<Arc<Self>> {
        if let Some(d) = &dir {
            store::save_state(d, &state, durable)?;
        }
        Ok(Arc::new(Conversation {
            inner: Mutex::new(Inner {
                state,
                log: EventLog::new(dir.clone(), durable),
                subscribers: Vec::new(),
            }),
            dir,
            durable,
            agent: Mutex::new(None),
            agent_info: Mutex::new(None),
            run_lock: Mutex::new(()),
            next_subscriber: AtomicU64::new(1),
        }))
    }

    /// Loads a stored conversation. One stored as `running` died with its
    /// process: it comes back as `error`, with an event saying so.
    pub fn open(dir: &Path, durable: bool) -> Result<Arc<Self>> {
        let state = store::load_state(dir)?;
        let log = EventLog::load(dir, durable)?;
        let was_running = state.execution_status == ExecutionStatus::Running;
        let conv = Arc::new(Conversation {
            inner: Mutex::new(Inner {
                state,
                log,
                subscribers: Vec::new(),
            }),
            dir: Some(dir.to_path_buf()),
            durable,
            agent: Mutex::new(None),
            agent_info: Mutex::new(None),
            run_lock: Mutex::new(()),
            next_subscriber: AtomicU64::new(1),
        });
        if was_running {
            conv.emit(Event::ConversationError(ConversationErrorEvent {
                meta: EventMeta::new(Source::Environment),
                code: "RunInterrupted".into(),
                detail: "The process running this conversation stopped in the middle of a run. Run it again to continue.".into(),
                classification: Some(ErrorClassification::new("transient", true, "retry")),
                extra: Map::new(),
            }))?;
            conv.set_status(ExecutionStatus::Error)?;
        }
        Ok(conv)
    }

    /// The conversation id (dashed UUID).
    pub fn id(&self) -> String {
        lock(&self.inner).state.id.clone()
    }

    /// Where it is stored.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// A copy of the state.
    pub fn state(&self) -> ConversationState {
        lock(&self.inner).state.clone()
    }

    /// Runs `f` on the state under the lock and saves it.
    pub fn update_state<T>(&self, f: impl FnOnce(&mut ConversationState) -> T) -> Result<T> {
        let mut inner = lock(&self.inner);
        let out = f(&mut inner.state);
        self.save(&inner.state)?;
        Ok(out)
    }

    fn save(&self, state: &ConversationState) -> Result<()> {
        match &self.dir {
            Some(d) => store::save_state(d, state, self.durable),
            None => Ok(()),
        }
    }

    /// All events, oldest first.
    pub fn events(&self) -> Vec<Arc<Event>> {
        lock(&self.inner).log.all().to_vec()
    }

    /// How many events there are.
    pub fn event_count(&self) -> usize {
        lock(&self.inner).log.len()
    }

    /// Runs `f` on the events without copying them.
    pub fn with_events<T>(&self, f: impl FnOnce(&[Arc<Event>]) -> T) -> T {
        f(lock(&self.inner).log.all())
    }

    /// Subscribes to events from now on; the queue holds `capacity` events
    /// (`None`: unbounded). A subscriber whose queue is full is dropped: its
    /// receiver disconnects, and it must resynchronise from the log.
    pub fn subscribe(&self, capacity: Option<usize>) -> (u64, Receiver<Arc<Published>>) {
        let (tx, rx) = match capacity {
            Some(c) => crossbeam_channel::bounded(c),
            None => crossbeam_channel::unbounded(),
        };
        let id = self.next_subscriber.fetch_add(1, Ordering::Relaxed);
        lock(&self.inner).subscribers.push(Subscriber { id, tx });
        (id, rx)
    }

    /// Subscribes and returns, atomically: a `full_state` event to start with,
    /// the stored events `replay` selects (to send before anything live), and
    /// the live receiver. Nothing is missed or seen twice between the three.
    pub fn subscribe_with_state(
        &self,
        capacity: Option<usize>,
        replay: impl Fn(&Event) -> bool,
    ) -> Subscription {
        let mut inner = lock(&self.inner);
        let first = Arc::new(Event::StateUpdate(ConversationStateUpdateEvent::new(
            crate::wire::FULL_STATE_KEY,
            inner.state.full_state_value(),
        )));
        let replayed = inner
            .log
            .all()
            .iter()
            .filter(|e| replay(e))
            .cloned()
            .collect();
        let (tx, rx) = match capacity {
            Some(c) => crossbeam_channel::bounded(c),
            None => crossbeam_channel::unbounded(),
        };
        let id = self.next_subscriber.fetch_add(1, Ordering::Relaxed);
        inner.subscribers.push(Subscriber { id, tx });
        Subscription {
            id,
            first,
            replay: replayed,
            events: rx,
        }
    }

    /// Ends a subscription.
    pub fn unsubscribe(&self, id: u64) {
        lock(&self.inner).subscribers.retain(|s| s.id != id);
    }

    /// How many subscribers there are.
    pub fn subscriber_count(&self) -> usize {
        lock(&self.inner).subscribers.len()
    }

    fn notify(inner: &mut Inner, event: &Arc<Event>) {
        if inner.subscribers.is_empty() {
            return;
        }
        let event = Published::new(Arc::clone(event));
        inner
            .subscribers
            .retain(|s| match s.tx.try_send(Arc::clone(&event)) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    log::warn!("dropping subscriber {}: its queue is full", s.id);
                    false
                }
                Err(TrySendError::Disconnected(_)) => false,
            });
    }

    /// Stores an event and hands it to subscribers. Events other than state
    /// updates become the new leaf of the conversation tree.
    pub fn emit(&self, mut event: Event) -> Result<Arc<Event>> {
        let mut inner = lock(&self.inner);
        let is_update = matches!(event, Event::StateUpdate(_) | Event::ConversationError(_));
        if let Some(meta) = event_meta_mut(&mut event) {
            if meta.parent_id.is_none() {
                meta.parent_id = inner.state.leaf_event_id.clone();
            }
        }
        let event = inner.log.append(event)?;
        if !is_update {
            inner.state.leaf_event_id = Some(event.id().to_string());
        }
        Self::notify(&mut inner, &event);
        Ok(event)
    }

    /// Hands an event to subscribers without storing it (`full_state`).
    pub fn publish_transient(&self, event: Event) {
        let event = Arc::new(event);
        let mut inner = lock(&self.inner);
        Self::notify(&mut inner, &event);
    }

    /// A `full_state` event for the current state.
    pub fn full_state_event(&self) -> Event {
        let value = lock(&self.inner).state.full_state_value();
        Event::StateUpdate(ConversationStateUpdateEvent::new(
            crate::wire::FULL_STATE_KEY,
            value,
        ))
    }

    fn emit_update(&self, key: &str, value: serde_json::Value) -> Result<()> {
        let mut update = ConversationStateUpdateEvent::new(key, value);
        update.meta.parent_id = lock(&self.inner).state.last_user_message_id.clone();
        self.emit(Event::StateUpdate(update)).map(|_| ())
    }

    /// The status.
    pub fn status(&self) -> ExecutionStatus {
        lock(&self.inner).state.execution_status
    }

    /// Sets the status, saves it and publishes the change (if any).
    pub fn set_status(&self, status: ExecutionStatus) -> Result<()> {
        let changed =
            self.update_state(|s| std::mem::replace(&mut s.execution_status, status) != status)?;
        if changed {
            self.emit_update("execution_status", json!(status))?;
        }
        Ok(())
    }

    /// Installs the agent (LLM and tools) that runs this conversation.
    pub fn set_agent(&self, agent: Agent) {
        *lock(&self.agent_info) = Some(AgentInfo {
            llm: agent.llm().clone(),
        });
        if let Some(mut old) = lock(&self.agent).replace(agent) {
            old.close();
        }
    }

    /// A handle on the agent's model (shares its metrics), if there is an agent.
    pub fn agent_llm(&self) -> Option<crate::llm::Llm> {
        lock(&self.agent_info).as_ref().map(|a| a.llm.clone())
    }

    /// Whether an agent is installed.
    pub fn has_agent(&self) -> bool {
        lock(&self.agent_info).is_some()
    }

    /// Adds a user message (a finished or stuck conversation becomes idle).
    pub fn send_message(&self, message: Message) -> Result<Arc<Event>> {
        if matches!(
            self.status(),
            ExecutionStatus::Finished | ExecutionStatus::Stuck
        ) {
            self.set_status(ExecutionStatus::Idle)?;
        }
        self.ensure_system_prompt()?;
        let event = self.emit(Event::Message(MessageEvent {
            meta: EventMeta::new(Source::User),
            llm_message: message,
            llm_response_id: None,
            activated_skills: Vec::new(),
            extended_content: Vec::new(),
            sender: None,
            extra: Map::new(),
        }))?;
        let id = event.id().to_string();
        self.update_state(|s| s.last_user_message_id = Some(id.clone()))?;
        let mut update = ConversationStateUpdateEvent::new("last_user_message_id", json!(id));
        update.meta.parent_id = Some(id);
        self.emit(Event::StateUpdate(update))?;
        Ok(event)
    }

    fn ensure_system_prompt(&self) -> Result<()> {
        let has = self.with_events(|e| {
            e.iter()
                .take(3)
                .any(|e| matches!(e.as_ref(), Event::SystemPrompt(_)))
        });
        if has {
            return Ok(());
        }
        if !self.has_agent() {
            return Ok(());
        }
        let working_dir =
            crate::tool::terminal::absolute_dir(Path::new(&self.state().working_dir()));
        let event = Agent::system_prompt_for(&working_dir);
        self.emit(event).map(|_| ())
    }

    /// Pauses between steps (no-op unless idle or running).
    pub fn pause(&self) -> Result<()> {
        if matches!(
            self.status(),
            ExecutionStatus::Idle | ExecutionStatus::Running
        ) {
            self.set_status(ExecutionStatus::Paused)?;
            self.emit(Event::Pause(PlainEvent {
                meta: EventMeta::new(Source::User),
                extra: Map::new(),
            }))?;
        }
        Ok(())
    }

    /// Rejects the actions waiting for approval.
    pub fn reject_pending(&self, reason: &str) -> Result<()> {
        if self.status() == ExecutionStatus::WaitingForConfirmation {
            self.set_status(ExecutionStatus::Idle)?;
        }
        for action in unmatched_actions(&self.events()) {
            if let Event::Action(a) = action.as_ref() {
                self.emit(Event::UserReject(UserRejectObservation {
                    meta: EventMeta::new(Source::Environment),
                    tool_name: a.tool_name.clone(),
                    tool_call_id: a.tool_call_id.clone(),
                    rejection_reason: reason.to_string(),
                    rejection_source: "user".into(),
                    action_id: a.meta.id.clone(),
                    extra: Map::new(),
                }))?;
            }
        }
        Ok(())
    }

    /// Changes the confirmation policy.
    pub fn set_confirmation_policy(&self, policy: ConfirmationPolicy) -> Result<()> {
        let value = serde_json::to_value(&policy).unwrap_or_default();
        let changed = self.update_state(|s| {
            std::mem::replace(&mut s.confirmation_policy, policy.clone()) != policy
        })?;
        if changed {
            self.emit_update("confirmation_policy", value)?;
        }
        Ok(())
    }

    /// Whether a run is in progress.
    pub fn is_running(&self) -> bool {
        self.run_lock.try_lock().is_err()
    }

    /// Runs the agent until it finishes, pauses, waits for approval, gets
    /// stuck, fails or reaches the step limit; returns the final status. Only
    /// one run at a time: a second caller gets [`Error::InvalidInput`].
    pub fn run(&self) -> Result<ExecutionStatus> {
        let Ok(_running) = self.run_lock.try_lock() else {
            return Err(Error::InvalidInput(
                "the conversation is already running".into(),
            ));
        };
        if !self.has_agent() {
            return Err(Error::InvalidInput(
                "this conversation has no agent: its LLM settings (with the API key) must be given again".into(),
            ));
        }
        self.ensure_system_prompt()?;
        if matches!(
            self.status(),
            ExecutionStatus::Idle
                | ExecutionStatus::Paused
                | ExecutionStatus::Error
                | ExecutionStatus::Stuck
        ) {
            self.set_status(ExecutionStatus::Running)?;
        }
        let result = self.run_loop();
        if let Err(e) = &result {
            log::warn!("conversation {} run failed: {e}", self.id());
        }
        result.map(|()| self.status())
    }

    fn run_loop(&self) -> Result<()> {
        let max = self.state().max_iterations.max(1);
        let mut iterations = 0;
        loop {
            match self.status() {
                ExecutionStatus::Paused
                | ExecutionStatus::Stuck
                | ExecutionStatus::Finished
                | ExecutionStatus::Error => return Ok(()),
                ExecutionStatus::WaitingForConfirmation => {
                    self.set_status(ExecutionStatus::Running)?
                }
                ExecutionStatus::Idle => self.set_status(ExecutionStatus::Running)?,
                _ => {}
            }
            if self.state().stuck_detection {
                match self.with_events(stuck::check) {
                    Verdict::Stuck(why) => {
                        log::info!("conversation {} is stuck: {why}", self.id());
                        self.set_status(ExecutionStatus::Stuck)?;
                        return Ok(());
                    }
                    Verdict::Nudge(tool, error) => {
                        self.emit(environment_note(&stuck::nudge_text(&tool, &error)))?;
                    }
                    Verdict::Fine => {}
                }
            }
            let outcome = {
                let mut guard = lock(&self.agent);
                match guard.as_mut() {
                    Some(agent) => agent.step(self),
                    None => return Ok(()),
                }
            };
            iterations += 1;
            match outcome {
                Ok(()) => {}
                Err(StepError::Llm(e)) => return self.fail_llm(&e),
                Err(StepError::Store(e)) => {
                    self.fail("StorageError", &e.to_string())?;
                    return Err(e);
                }
            }
            if self.status() == ExecutionStatus::WaitingForConfirmation {
                return Ok(());
            }
            if iterations >= max && self.status() == ExecutionStatus::Running {
                return self.fail(
                    "MaxIterationsReached",
                    &format!("Agent reached maximum iterations limit ({max})."),
                );
            }
        }
    }

    fn fail_llm(&self, e: &LlmError) -> Result<()> {
        let detail = match e.kind {
            crate::llm::LlmErrorKind::Authentication => {
                format!(
                    "The LLM API key appears to be invalid or has expired. ({})",
                    e.message
                )
            }
            _ => e.message.clone(),
        };
        self.fail(e.code(), &detail)
    }

    fn fail(&self, code: &str, detail: &str) -> Result<()> {
        let (kind, retryable, action) = match code {
            "LLMAuthenticationError" => ("auth", false, "settings"),
            "LLMRateLimitError" => ("rate_limit", true, "retry"),
            "LLMTimeoutError" | "LLMServiceUnavailableError" | "LLMNoResponseError" => {
                ("transient", true, "retry")
            }
            "LLMBadRequestError" => ("config", false, "settings"),
            "MaxIterationsReached" | "LLMContextWindowExceedError" => {
                ("agent_action", true, "retry")
            }
            _ => ("unknown", false, "none"),
        };
        self.set_status(ExecutionStatus::Error)?;
        self.emit(Event::ConversationError(ConversationErrorEvent {
            meta: EventMeta::new(Source::Environment),
            code: code.into(),
            detail: detail.into(),
            classification: Some(ErrorClassification::new(kind, retryable, action)),
            extra: Map::new(),
        }))?;
        Ok(())
    }

    /// Stops the agent's shell and everything it started.
    pub fn close(&self) {
        if let Some(agent) = lock(&self.agent).as_mut() {
            agent.close();
        }
    }
}

impl StepHost for Conversation {
    fn events(&self) -> Vec<Arc<Event>> {
        Conversation::events(self)
    }
    fn emit(&self, event: Event) -> Result<Arc<Event>> {
        Conversation::emit(self, event)
    }
    fn set_status(&self, status: ExecutionStatus) -> Result<()> {
        Conversation::set_status(self, status)
    }
    fn status(&self) -> ExecutionStatus {
        Conversation::status(self)
    }
    fn confirmation_policy(&self) -> ConfirmationPolicy {
        lock(&self.inner).state.confirmation_policy.clone()
    }
    fn record_metrics(&self, usage_id: &str, metrics: Metrics) -> Result<()> {
        let snapshot = self.update_state(|s| {
            s.stats
                .usage_to_metrics
                .insert(usage_id.to_string(), metrics);
            serde_json::to_value(s.stats.snapshot()).unwrap_or_default()
        })?;
        self.emit_update("stats", snapshot)
    }
}

fn event_meta_mut(event: &mut Event) -> Option<&mut EventMeta> {
    Some(match event {
        Event::SystemPrompt(e) => &mut e.meta,
        Event::Message(e) => &mut e.meta,
        Event::Action(e) => &mut e.meta,
        Event::Observation(e) => &mut e.meta,
        Event::UserReject(e) => &mut e.meta,
        Event::AgentError(e) => &mut e.meta,
        Event::ConversationError(e) => &mut e.meta,
        Event::ServerError(e) => &mut e.meta,
        Event::StateUpdate(e) => &mut e.meta,
        Event::Pause(e) | Event::Interrupt(e) | Event::CondensationRequest(e) => &mut e.meta,
        Event::Condensation(e) => &mut e.meta,
        Event::Unknown(_) => return None,
    })
}
