//! Conversation resources: `ConversationInfo`, execution status, and the
//! request bodies of the conversation routes.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::common::{content_list, Content, Extra, Role};

/// Where a conversation is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionStatus {
    /// Created or between runs.
    #[default]
    Idle,
    /// The agent loop is running.
    Running,
    /// Paused by the user.
    Paused,
    /// An action waits for the user to accept or reject it.
    WaitingForConfirmation,
    /// The agent called `finish`.
    Finished,
    /// The run stopped on an error.
    Error,
    /// The stuck detector stopped the run.
    Stuck,
    /// Being deleted.
    Deleting,
}

impl ExecutionStatus {
    /// `finished`, `error` or `stuck`: the run is over and will not resume by itself.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Finished | Self::Error | Self::Stuck)
    }

    /// The wire spelling (`waiting_for_confirmation`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::WaitingForConfirmation => "waiting_for_confirmation",
            Self::Finished => "finished",
            Self::Error => "error",
            Self::Stuck => "stuck",
            Self::Deleting => "deleting",
        }
    }
}

impl std::fmt::Display for ExecutionStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A conversation as the server describes it (`GET /api/conversations/{id}`).
///
/// Fields this crate does not use are kept in `extra`; secrets inside `agent`
/// are masked as `"**********"` by the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationInfo {
    /// Dashed UUID.
    pub id: String,
    /// `{"working_dir": ..., "kind": "LocalWorkspace"}`.
    pub workspace: Value,
    /// Where the server stores it.
    #[serde(default)]
    pub persistence_dir: Option<String>,
    /// Step limit of one run.
    #[serde(default = "default_max_iterations")]
    pub max_iterations: u64,
    /// Whether the stuck detector is on.
    #[serde(default = "yes")]
    pub stuck_detection: bool,
    /// Current status.
    #[serde(default)]
    pub execution_status: ExecutionStatus,
    /// `{"kind": "NeverConfirm"}` and friends.
    #[serde(default = "never_confirm")]
    pub confirmation_policy: Value,
    /// `{"usage_to_metrics": {...}}`.
    #[serde(default)]
    pub stats: Value,
    /// Title, once set.
    #[serde(default)]
    pub title: Option<String>,
    /// Creation time.
    #[serde(default)]
    pub created_at: Option<String>,
    /// Last change.
    #[serde(default)]
    pub updated_at: Option<String>,
    /// The agent specification (secrets masked).
    #[serde(default)]
    pub agent: Value,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Default step limit of a run, as in the reference.
pub const DEFAULT_MAX_ITERATIONS: u64 = 500;

fn default_max_iterations() -> u64 {
    DEFAULT_MAX_ITERATIONS
}

fn yes() -> bool {
    true
}

fn never_confirm() -> Value {
    serde_json::json!({"kind": "NeverConfirm"})
}

/// The body of `POST /api/conversations/{id}/events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SendMessageRequest {
    /// Normally `user`.
    #[serde(default)]
    pub role: Role,
    /// The message parts.
    #[serde(default, deserialize_with = "content_list")]
    pub content: Vec<Content>,
    /// Start the agent after storing the message.
    #[serde(default)]
    pub run: bool,
}

/// The body of `POST /api/conversations` (the reference's
/// `StartConversationRequest`); fields this crate does not use stay in `extra`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartConversationRequest {
    /// The agent specification: LLM, tools, condenser, prompt options.
    pub agent: Value,
    /// `{"working_dir": ..., "kind": "LocalWorkspace"}`.
    pub workspace: Value,
    /// Reuse this id (dashed UUID); an existing conversation is returned as is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    /// `{"kind": "NeverConfirm"}` (the default when absent) and friends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmation_policy: Option<Value>,
    /// A first message, sent right after creation.
    #[serde(default)]
    pub initial_message: Option<SendMessageRequest>,
    /// Step limit of one run.
    #[serde(default = "default_max_iterations")]
    pub max_iterations: u64,
    /// Whether the stuck detector is on.
    #[serde(default = "yes")]
    pub stuck_detection: bool,
    /// Fields not modelled here.
    #[serde(flatten)]
    pub extra: Extra,
}
