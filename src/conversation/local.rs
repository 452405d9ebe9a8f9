//! [`LocalConversation`]: an agent conversation in this process, with the API
//! the remote one has: send messages, run (blocking), pause, read status,
//! events and costs, generate a title. Callbacks get every event, in order,
//! on their own thread.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::{title, Conversation, ConversationState};
use crate::agent::confirmation::ConfirmationPolicy;
use crate::agent::spec::AgentSpec;
use crate::agent::Agent;
use crate::llm::{ConversationStats, Llm};
use crate::tool::{Toolbox, ToolboxConfig};
use crate::util::process::ProcessGroups;
use crate::wire::{Event, ExecutionStatus, Message, Role};
use crate::{Error, Result};

/// A callback that sees every event.
pub type Callback = Box<dyn FnMut(&Event) + Send + 'static>;

/// Settings of a [`LocalConversation`].
pub struct LocalConversationBuilder {
    llm: Llm,
    working_dir: PathBuf,
    persistence_dir: Option<PathBuf>,
    max_iterations: u64,
    stuck_detection: bool,
    confirmation_policy: ConfirmationPolicy,
    callbacks: Vec<Callback>,
    no_output_timeout: Duration,
    durable: bool,
}

impl LocalConversationBuilder {
    /// Where the agent works (default `workspace/project`).
    pub fn working_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.working_dir = dir.into();
        self
    }

    /// Store the conversation in this directory (reference layout:
    /// `base_state.json`, `events/`), so it can be reopened.
    pub fn persistence_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.persistence_dir = Some(dir.into());
        self
    }

    /// Step limit of one run (default 500).
    pub fn max_iterations(mut self, n: u64) -> Self {
        self.max_iterations = n;
        self
    }

    /// Turns the stuck detector on or off (default on).
    pub fn stuck_detection(mut self, on: bool) -> Self {
        self.stuck_detection = on;
        self
    }

    /// Which actions wait for approval (default none).
    pub fn confirmation_policy(mut self, policy: ConfirmationPolicy) -> Self {
        self.confirmation_policy = policy;
        self
    }

    /// Adds a callback for every event.
    pub fn on_event(mut self, f: impl FnMut(&Event) + Send + 'static) -> Self {
        self.callbacks.push(Box::new(f));
        self
    }

    /// How long the terminal waits for new output before returning (30 s).
    pub fn terminal_no_output_timeout(mut self, t: Duration) -> Self {
        self.no_output_timeout = t;
        self
    }

    /// fsync every event and state write (survives power loss, slower).
    pub fn durable(mut self, on: bool) -> Self {
        self.durable = on;
        self
    }

    /// Creates the conversation.
    pub fn build(self) -> Result<LocalConversation> {
        let id = crate::util::id::uuid4();
        let working_dir = crate::tool::terminal::absolute_dir(&self.working_dir);
        let mut state = ConversationState::new(
            id.clone(),
            AgentSpec::default_for(self.llm.config().clone()),
            &working_dir.to_string_lossy(),
        );
        state.max_iterations = self.max_iterations;
        state.stuck_detection = self.stuck_detection;
        state.confirmation_policy = self.confirmation_policy.clone();
        state.persistence_dir = self
            .persistence_dir
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned());
        let conv = Conversation::create(state, self.persistence_dir.clone(), self.durable)?;
        LocalConversation::attach(
            conv,
            self.llm,
            &working_dir,
            self.no_output_timeout,
            self.callbacks,
        )
    }
}

/// An agent conversation running in this process.
///
/// ```
/// use openhands_sync::conversation::LocalConversation;
/// use openhands_sync::llm::{Llm, LlmConfig};
///
/// # fn main() -> openhands_sync::Result<()> {
/// # let dir = std::env::temp_dir().join(format!("ohs-doc-local-{}", std::process::id()));
/// let llm = Llm::new(LlmConfig::new("scripted/demo")); // offline model
/// let conversation = LocalConversation::builder(llm).working_dir(&dir).build()?;
/// conversation.send_message("Write 3 facts about this project into FACTS.txt.")?;
/// conversation.run()?;
/// assert!(dir.join("FACTS.txt").exists());
/// println!("{} events", conversation.events().len());
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok(())
/// # }
/// ```
pub struct LocalConversation {
    conv: Arc<Conversation>,
    groups: Arc<ProcessGroups>,
    subscription: Option<u64>,
    callback_thread: Option<JoinHandle<()>>,
}

impl LocalConversation {
    /// Settings for a conversation driven by `llm`.
    pub fn builder(llm: Llm) -> LocalConversationBuilder {
        LocalConversationBuilder {
            llm,
            working_dir: PathBuf::from("workspace/project"),
            persistence_dir: None,
            max_iterations: crate::wire::DEFAULT_MAX_ITERATIONS,
            stuck_detection: true,
            confirmation_policy: ConfirmationPolicy::NeverConfirm,
            callbacks: Vec::new(),
            no_output_timeout: crate::tool::terminal::NO_CHANGE_TIMEOUT,
            durable: false,
        }
    }

    /// Reopens a conversation stored in `dir`. Keys are never stored in
    /// clear, so the LLM is given again.
    pub fn open(dir: &Path, llm: Llm, callbacks: Vec<Callback>) -> Result<LocalConversation> {
        let conv = Conversation::open(dir, false)?;
        let working_dir = PathBuf::from(conv.state().working_dir());
        let usage = llm.config().usage_id.clone();
        if let Some(m) = conv.state().stats.usage_to_metrics.get(&usage) {
            llm.restore_metrics(m.clone());
        }
        LocalConversation::attach(
            conv,
            llm,
            &working_dir,
            crate::tool::terminal::NO_CHANGE_TIMEOUT,
            callbacks,
        )
    }

    fn attach(
        conv: Arc<Conversation>,
        llm: Llm,
        working_dir: &Path,
        no_output_timeout: Duration,
        mut callbacks: Vec<Callback>,
    ) -> Result<LocalConversation> {
        let groups = Arc::new(ProcessGroups::default());
        let toolbox = Toolbox::new(
            ToolboxConfig {
                working_dir: working_dir.to_path_buf(),
                state_dir: conv.dir().map(Path::to_path_buf),
                no_change_timeout: no_output_timeout,
            },
            Arc::clone(&groups),
        );
        conv.set_agent(Agent::new(llm, toolbox));
        let (subscription, callback_thread) = if callbacks.is_empty() {
            (None, None)
        } else {
            let (id, rx) = conv.subscribe(None);
            let thread = std::thread::Builder::new()
                .name("conversation-callbacks".into())
                .spawn(move || {
                    for published in rx {
                        for cb in callbacks.iter_mut() {
                            cb(&published.event);
                        }
                    }
                })
                .map_err(|e| Error::io("spawning the callback thread", e))?;
            (Some(id), Some(thread))
        };
        Ok(LocalConversation {
            conv,
            groups,
            subscription,
            callback_thread,
        })
    }

    /// The conversation id.
    pub fn id(&self) -> String {
        self.conv.id()
    }

    /// The shared conversation underneath.
    pub fn conversation(&self) -> &Arc<Conversation> {
        &self.conv
    }

    /// Adds a user message (does not run the agent).
    pub fn send_message(&self, text: &str) -> Result<()> {
        self.conv
            .send_message(Message::text(Role::User, text))
            .map(|_| ())
    }

    /// Runs the agent until it stops; returns the final status. A run that
    /// ends in `error` returns [`Error::Run`] with the error event's code and
    /// detail.
    pub fn run(&self) -> Result<ExecutionStatus> {
        let status = self.conv.run()?;
        if status == ExecutionStatus::Error {
            let (code, detail) = self
                .conv
                .with_events(|events| {
                    events.iter().rev().find_map(|e| match e.as_ref() {
                        Event::ConversationError(c) => Some((c.code.clone(), c.detail.clone())),
                        _ => None,
                    })
                })
                .unwrap_or_else(|| ("UnknownError".into(), "the run ended in error".into()));
            return Err(Error::Run { code, detail });
        }
        Ok(status)
    }

    /// Asks a running agent to stop after its current step.
    pub fn pause(&self) -> Result<()> {
        self.conv.pause()
    }

    /// The current status.
    pub fn execution_status(&self) -> ExecutionStatus {
        self.conv.status()
    }

    /// All events so far (index, slice and iterate it like any `Vec`).
    pub fn events(&self) -> Vec<Arc<Event>> {
        self.conv.events()
    }

    /// LLM usage per usage id; `.combined_metrics().accumulated_cost` is the
    /// total cost.
    pub fn stats(&self) -> ConversationStats {
        self.conv.state().stats
    }

    /// A title of at most `max_length` characters for the conversation, written
    /// by `llm` (the agent's model when `None`).
    pub fn generate_title(&self, max_length: usize, llm: Option<&Llm>) -> Result<String> {
        let first = title::first_user_text(&self.conv.events())
            .ok_or_else(|| Error::InvalidInput("no user message to make a title from".into()))?;
        let agent_llm;
        let llm = match llm {
            Some(l) => l,
            None => {
                agent_llm = Llm::new(self.conv.state().agent.llm.clone());
                &agent_llm
            }
        };
        Ok(title::generate(&first, max_length, Some(llm)))
    }

    /// Rejects the actions waiting for approval.
    pub fn reject_pending_actions(&self, reason: &str) -> Result<()> {
        self.conv.reject_pending(reason)
    }

    /// Changes which actions wait for approval.
    pub fn set_confirmation_policy(&self, policy: ConfirmationPolicy) -> Result<()> {
        self.conv.set_confirmation_policy(policy)
    }

    /// Stops the shell, delivers the remaining callbacks and ends.
    pub fn close(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.conv.close();
        self.groups.kill_all();
        if let Some(id) = self.subscription.take() {
            self.conv.unsubscribe(id);
        }
        if let Some(t) = self.callback_thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for LocalConversation {
    fn drop(&mut self) {
        self.shutdown();
    }
}
