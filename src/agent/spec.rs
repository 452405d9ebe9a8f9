//! [`AgentSpec`]: the `agent` object of `StartConversationRequest` (kind
//! `Agent`): the LLM plus tool and prompt options. Secrets anywhere in it are
//! masked when it is serialised; [`AgentSpec::to_value_exposed`] is the one way
//! to send real keys (to a server that must call the LLM).

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::llm::secret::MASK;
use crate::llm::LlmConfig;

/// Field names whose values are secrets wherever they appear.
const SECRET_FIELDS: &[&str] = &[
    "api_key",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
];

/// The agent of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "RawSpec", into = "RawSpec")]
pub struct AgentSpec {
    /// The model that drives the agent.
    pub llm: LlmConfig,
    /// Tools by name (`{"name": "terminal", "params": {}}`), besides the
    /// built-in `finish` and `think`.
    pub tools: Vec<Value>,
    /// Everything else (`kind`, `condenser`, `system_prompt_kwargs`, ...),
    /// with secrets masked.
    pub extra: Map<String, Value>,
}

#[derive(Serialize, Deserialize)]
struct RawSpec {
    llm: LlmConfig,
    #[serde(default)]
    tools: Vec<Value>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

fn mask_secrets(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, val) in map.iter_mut() {
                if SECRET_FIELDS.contains(&k.as_str()) && val.is_string() {
                    *val = Value::String(MASK.into());
                } else {
                    mask_secrets(val);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_secrets),
        _ => {}
    }
}

impl From<RawSpec> for AgentSpec {
    fn from(raw: RawSpec) -> Self {
        let mut extra = Value::Object(raw.extra);
        mask_secrets(&mut extra);
        let mut extra = match extra {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        extra.entry("kind").or_insert_with(|| json!("Agent"));
        AgentSpec {
            llm: raw.llm,
            tools: raw.tools,
            extra,
        }
    }
}

impl From<AgentSpec> for RawSpec {
    fn from(spec: AgentSpec) -> Self {
        RawSpec {
            llm: spec.llm,
            tools: spec.tools,
            extra: spec.extra,
        }
    }
}

impl AgentSpec {
    /// The reference's default agent (`get_default_agent(llm, cli_mode=True)`):
    /// terminal, file editor and task tracker, plus finish and think.
    pub fn default_for(llm: LlmConfig) -> Self {
        let mut condenser_llm = llm.clone().with_usage_id("condenser");
        condenser_llm.api_key = llm.api_key.clone();
        let mut spec: AgentSpec = serde_json::from_value(json!({
            "llm": llm,
            "tools": [{"name": "terminal", "params": {}}, {"name": "file_editor", "params": {}}, {"name": "task_tracker", "params": {}}],
            "mcp_config": {},
            "include_default_tools": ["FinishTool", "ThinkTool"],
            "system_prompt_kwargs": {"cli_mode": true, "llm_security_analyzer": true},
            "condenser": {"kind": "LLMSummarizingCondenser", "llm": condenser_llm, "max_size": 80, "keep_first": 4},
            "kind": "Agent",
        }))
        .unwrap_or_else(|_| AgentSpec {
            llm: LlmConfig::new("scripted/demo"),
            tools: Vec::new(),
            extra: Map::new(),
        });
        spec.llm = llm;
        spec
    }

    /// The JSON with real keys (the main LLM's, also given to the condenser's
    /// LLM). Never log it.
    pub fn to_value_exposed(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        v["llm"] = self.llm.to_value_exposed();
        if let (Some(key), Some(cond)) = (&self.llm.api_key, v.pointer_mut("/condenser/llm")) {
            if cond.is_object() {
                cond["api_key"] = Value::String(key.expose().to_string());
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_nested_secrets() {
        let spec = AgentSpec::default_for(LlmConfig::new("openai/gpt-4o").with_api_key("sk-abc"));
        let text = serde_json::to_string(&spec).unwrap();
        assert!(!text.contains("sk-abc"), "{text}");
        assert_eq!(spec.llm.api_key.as_ref().unwrap().expose(), "sk-abc");
        let exposed = spec.to_value_exposed();
        assert_eq!(exposed["llm"]["api_key"], "sk-abc");
        assert_eq!(exposed["condenser"]["llm"]["api_key"], "sk-abc");
        assert_eq!(exposed["kind"], "Agent");
        let back: AgentSpec = serde_json::from_value(exposed).unwrap();
        assert_eq!(back.extra["condenser"]["llm"]["api_key"], MASK);
    }
}
