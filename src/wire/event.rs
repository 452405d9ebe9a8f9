//! Conversation events: everything a conversation's log and event socket carry.
//!
//! Each event is a JSON object with `id` (dashed UUID4), `timestamp`, `source`,
//! `parent_id` and a `kind` naming its type. Null fields are omitted when we
//! write events (the reference's `exclude_none`), and both forms are read.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::action::{Action, Observation};
use super::common::{Extra, Message, MessageToolCall, TextContent};
use super::macros::tagged_union;

/// Who produced an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The agent (the model's messages and actions).
    Agent,
    /// The user.
    User,
    /// The runtime: tool results, state changes, errors.
    Environment,
    /// A hook script.
    Hook,
}

/// The fields every event carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventMeta {
    /// Dashed UUID4.
    pub id: String,
    /// ISO-8601 time the event was created.
    pub timestamp: String,
    /// Who produced it.
    pub source: Source,
    /// The event this one follows in the conversation tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
}

impl EventMeta {
    /// Fresh metadata: a new id and the current time.
    pub fn new(source: Source) -> Self {
        EventMeta {
            id: crate::util::id::uuid4(),
            timestamp: crate::util::time::now_naive(),
            source,
            parent_id: None,
        }
    }
}

/// Risk the model assigned to an action (`security_risk`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum SecurityRisk {
    /// Not assessed.
    #[default]
    #[serde(rename = "UNKNOWN")]
    Unknown,
    /// Read-only or harmless.
    #[serde(rename = "LOW")]
    Low,
    /// Changes things that can be undone.
    #[serde(rename = "MEDIUM")]
    Medium,
    /// Destructive, irreversible or touches secrets.
    #[serde(rename = "HIGH")]
    High,
}

/// The system prompt and tools offered to the model; first event of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemPromptEvent {
    /// Common fields.
    #[serde(flatten)]
    pub meta: EventMeta,
    /// The system prompt.
    pub system_prompt: TextContent,
    /// Tool definitions as the reference serialises them.
    pub tools: Vec<Value>,
    /// Per-run context appended to the prompt (date, working directory...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dynamic_context: Option<TextContent>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A user or agent message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageEvent {
    /// Common fields.
    #[serde(flatten)]
    pub meta: EventMeta,
    /// The message as the LLM sees it.
    pub llm_message: Message,
    /// The LLM response that produced an agent message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm_response_id: Option<String>,
    /// Skills activated by this message.
    #[serde(default)]
    pub activated_skills: Vec<String>,
    /// Extra content appended when the message is sent to the LLM.
    #[serde(default)]
    pub extended_content: Vec<TextContent>,
    /// Free-form sender label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A tool call the agent decided to make.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionEvent {
    /// Common fields.
    #[serde(flatten)]
    pub meta: EventMeta,
    /// Text the model wrote alongside the call.
    #[serde(default)]
    pub thought: Vec<TextContent>,
    /// Reasoning text of reasoning models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    /// Anthropic thinking blocks.
    #[serde(default)]
    pub thinking_blocks: Vec<Value>,
    /// OpenAI Responses reasoning item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responses_reasoning_item: Option<Value>,
    /// The parsed action; `None` when the call could not be parsed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    /// Name of the tool called.
    pub tool_name: String,
    /// The provider's call id.
    pub tool_call_id: String,
    /// The raw call.
    pub tool_call: MessageToolCall,
    /// The LLM response the call came from (calls of one response share it).
    pub llm_response_id: String,
    /// Risk the model assigned.
    #[serde(default)]
    pub security_risk: SecurityRisk,
    /// A one-line summary of the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

/// The result of running an action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObservationEvent {
    /// Common fields.
    #[serde(flatten)]
    pub meta: EventMeta,
    /// Tool that ran.
    pub tool_name: String,
    /// The call this answers.
    pub tool_call_id: String,
    /// What the tool observed.
    pub observation: Observation,
    /// Id of the [`ActionEvent`].
    pub action_id: String,
    /// Extra content appended when sent to the LLM.
    #[serde(default)]
    pub extended_content: Vec<TextContent>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

/// An action the user (or a hook) rejected instead of running it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRejectObservation {
    /// Common fields.
    #[serde(flatten)]
    pub meta: EventMeta,
    /// Tool that would have run.
    pub tool_name: String,
    /// The call this answers.
    pub tool_call_id: String,
    /// Why it was rejected.
    pub rejection_reason: String,
    /// `"user"` or `"hook"`.
    #[serde(default = "rejection_source_user")]
    pub rejection_source: String,
    /// Id of the rejected [`ActionEvent`].
    pub action_id: String,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

fn rejection_source_user() -> String {
    "user".to_string()
}

/// How an error should be treated (`ErrorClassification`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorClassification {
    /// `auth`, `quota`, `rate_limit`, `config`, `transient`, `agent_action`,
    /// `internal` or `unknown`.
    pub kind: String,
    /// Whether retrying may help.
    pub retryable: bool,
    /// `none`, `retry` or `settings`.
    pub user_action: String,
    /// Correlation id, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_id: Option<String>,
}

impl ErrorClassification {
    /// A classification with no error id.
    pub fn new(kind: &str, retryable: bool, user_action: &str) -> Self {
        ErrorClassification {
            kind: kind.to_string(),
            retryable,
            user_action: user_action.to_string(),
            error_id: None,
        }
    }
}

/// An error the agent can see and recover from (bad tool call, tool failure).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentErrorEvent {
    /// Common fields.
    #[serde(flatten)]
    pub meta: EventMeta,
    /// Tool involved.
    pub tool_name: String,
    /// The call involved.
    pub tool_call_id: String,
    /// The error text, shown to the model verbatim.
    pub error: String,
    /// How to treat it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classification: Option<ErrorClassification>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

/// An error that stopped the conversation (LLM failure, max iterations...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationErrorEvent {
    /// Common fields.
    #[serde(flatten)]
    pub meta: EventMeta,
    /// Error class name (`LLMRateLimitError`, `MaxIterationsReached`, ...).
    pub code: String,
    /// What happened.
    pub detail: String,
    /// How to treat it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classification: Option<ErrorClassification>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

/// An error a server reports on the event socket (e.g. a bad client frame).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerErrorEvent {
    /// Common fields.
    #[serde(flatten)]
    pub meta: EventMeta,
    /// Error class name.
    pub code: String,
    /// What happened.
    pub detail: String,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

/// An event with only the common fields (`PauseEvent`, `InterruptEvent`,
/// `CondensationRequest`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlainEvent {
    /// Common fields.
    #[serde(flatten)]
    pub meta: EventMeta,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A change of one conversation-state field, or the whole state (`full_state`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationStateUpdateEvent {
    /// Common fields.
    #[serde(flatten)]
    pub meta: EventMeta,
    /// The state field (`execution_status`, `stats`, ...) or `full_state`.
    pub key: String,
    /// Its new value.
    pub value: Value,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

/// The `key` of a state update carrying the whole state.
pub const FULL_STATE_KEY: &str = "full_state";

impl ConversationStateUpdateEvent {
    /// A new update event from the environment.
    pub fn new(key: impl Into<String>, value: Value) -> Self {
        ConversationStateUpdateEvent {
            meta: EventMeta::new(Source::Environment),
            key: key.into(),
            value,
            extra: Extra::new(),
        }
    }

    /// Whether this is a `full_state` snapshot.
    pub fn is_full_state(&self) -> bool {
        self.key == FULL_STATE_KEY
    }
}

/// Old events replaced by a summary to keep the context small.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Condensation {
    /// Common fields.
    #[serde(flatten)]
    pub meta: EventMeta,
    /// Ids of events dropped from the LLM's view.
    #[serde(default)]
    pub forgotten_event_ids: Vec<String>,
    /// The summary that replaces them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Where the summary goes in the view.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary_offset: Option<u64>,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

tagged_union! {
    /// Any conversation event, chosen by its `kind`.
    pub enum Event {
        /// `SystemPromptEvent`.
        SystemPrompt(SystemPromptEvent) = "SystemPromptEvent",
        /// `MessageEvent`.
        Message(MessageEvent) = "MessageEvent",
        /// `ActionEvent`.
        Action(ActionEvent) = "ActionEvent",
        /// `ObservationEvent`.
        Observation(ObservationEvent) = "ObservationEvent",
        /// `UserRejectObservation`.
        UserReject(UserRejectObservation) = "UserRejectObservation",
        /// `AgentErrorEvent`.
        AgentError(AgentErrorEvent) = "AgentErrorEvent",
        /// `ConversationErrorEvent`.
        ConversationError(ConversationErrorEvent) = "ConversationErrorEvent",
        /// `ServerErrorEvent`.
        ServerError(ServerErrorEvent) = "ServerErrorEvent",
        /// `ConversationStateUpdateEvent`.
        StateUpdate(ConversationStateUpdateEvent) = "ConversationStateUpdateEvent",
        /// `PauseEvent`.
        Pause(PlainEvent) = "PauseEvent",
        /// `InterruptEvent`.
        Interrupt(PlainEvent) = "InterruptEvent",
        /// `CondensationRequest`.
        CondensationRequest(PlainEvent) = "CondensationRequest",
        /// `Condensation`.
        Condensation(Condensation) = "Condensation",
    }
}

impl Event {
    /// The common fields, `None` only for an [`Event::Unknown`] without them.
    pub fn meta(&self) -> Option<&EventMeta> {
        Some(match self {
            Event::SystemPrompt(e) => &e.meta,
            Event::Message(e) => &e.meta,
            Event::Action(e) => &e.meta,
            Event::Observation(e) => &e.meta,
            Event::UserReject(e) => &e.meta,
            Event::AgentError(e) => &e.meta,
            Event::ConversationError(e) => &e.meta,
            Event::ServerError(e) => &e.meta,
            Event::StateUpdate(e) => &e.meta,
            Event::Pause(e) | Event::Interrupt(e) | Event::CondensationRequest(e) => &e.meta,
            Event::Condensation(e) => &e.meta,
            Event::Unknown(_) => return None,
        })
    }

    /// The event id (empty for an unknown event without one).
    pub fn id(&self) -> &str {
        match (self.meta(), self) {
            (Some(m), _) => &m.id,
            (None, Event::Unknown(map)) => map.get("id").and_then(Value::as_str).unwrap_or(""),
            (None, _) => "",
        }
    }

    /// The event timestamp (empty for an unknown event without one).
    pub fn timestamp(&self) -> &str {
        match (self.meta(), self) {
            (Some(m), _) => &m.timestamp,
            (None, Event::Unknown(map)) => {
                map.get("timestamp").and_then(Value::as_str).unwrap_or("")
            }
            (None, _) => "",
        }
    }

    /// The state update, if this is one.
    pub fn as_state_update(&self) -> Option<&ConversationStateUpdateEvent> {
        match self {
            Event::StateUpdate(u) => Some(u),
            _ => None,
        }
    }
}
