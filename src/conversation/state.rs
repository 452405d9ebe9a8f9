//! [`ConversationState`]: what `base_state.json` holds and what a `full_state`
//! update carries, in the reference's field names.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::agent::confirmation::ConfirmationPolicy;
use crate::agent::spec::AgentSpec;
use crate::llm::ConversationStats;
use crate::wire::ExecutionStatus;

/// The state of one conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationState {
    /// Dashed UUID.
    pub id: String,
    /// The agent (secrets masked when serialised).
    pub agent: AgentSpec,
    /// `{"working_dir": ..., "kind": "LocalWorkspace"}`.
    pub workspace: Value,
    /// Where the conversation is stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
    /// Which actions need approval.
    #[serde(default)]
    pub confirmation_policy: ConfirmationPolicy,
    /// Skills activated so far.
    #[serde(default)]
    pub activated_knowledge_skills: Vec<String>,
    /// Actions blocked by hooks: id -> reason.
    #[serde(default)]
    pub blocked_actions: Map<String, Value>,
    /// Messages blocked by hooks: id -> reason.
    #[serde(default)]
    pub blocked_messages: Map<String, Value>,
    /// Id of the latest user message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_user_message_id: Option<String>,
    /// Id of the newest event in the conversation tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf_event_id: Option<String>,
    /// LLM usage per usage id.
    #[serde(default)]
    pub stats: ConversationStats,
    /// Names of secrets (values never appear here).
    #[serde(default = "empty_registry")]
    pub secret_registry: Value,
    /// User tags.
    #[serde(default)]
    pub tags: Map<String, Value>,
    /// Free-form agent state.
    #[serde(default)]
    pub agent_state: Map<String, Value>,
    /// Fields this crate does not use.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn default_max_iterations() -> u64 {
    crate::wire::DEFAULT_MAX_ITERATIONS
}
fn yes() -> bool {
    true
}
fn empty_registry() -> Value {
    json!({"secret_sources": {}})
}

impl ConversationState {
    /// A fresh state.
    pub fn new(id: String, agent: AgentSpec, working_dir: &str) -> Self {
        ConversationState {
            id,
            agent,
            workspace: json!({"working_dir": working_dir, "kind": "LocalWorkspace"}),
            persistence_dir: None,
            max_iterations: default_max_iterations(),
            stuck_detection: true,
            execution_status: ExecutionStatus::Idle,
            confirmation_policy: ConfirmationPolicy::NeverConfirm,
            activated_knowledge_skills: Vec::new(),
            blocked_actions: Map::new(),
            blocked_messages: Map::new(),
            last_user_message_id: None,
            leaf_event_id: None,
            stats: ConversationStats::default(),
            secret_registry: empty_registry(),
            tags: Map::new(),
            agent_state: Map::new(),
            extra: Map::new(),
        }
    }

    /// The agent's working directory.
    pub fn working_dir(&self) -> String {
        self.workspace
            .get("working_dir")
            .and_then(Value::as_str)
            .unwrap_or("workspace/project")
            .to_string()
    }

    /// The state as a `full_state` value (secrets masked, stats without
    /// per-call lists).
    pub fn full_state_value(&self) -> Value {
        let mut snapshot = self.clone();
        snapshot.stats = self.stats.snapshot();
        serde_json::to_value(&snapshot).unwrap_or(Value::Null)
    }
}
