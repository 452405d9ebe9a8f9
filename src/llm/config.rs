//! [`LlmConfig`]: the reference's `llm` object (model, key, endpoint,
//! retries, costs, ...). Unknown fields are kept so a spec written by the
//! reference client survives a round trip through us.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::secret::Secret;

/// Settings of one language model, as the reference's `LLM` model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlmConfig {
    /// `provider/model` in LiteLLM's convention (`openai/gpt-4o`,
    /// `anthropic/claude-sonnet-4-5`, `scripted/demo`, ...).
    pub model: String,
    /// The provider key (masked when serialised).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<Secret>,
    /// Endpoint override (`http://host/v1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Which usage bucket costs go to (`agent`, `condenser`, `title`, ...).
    #[serde(default = "default_usage_id")]
    pub usage_id: String,
    /// Sampling temperature; provider default when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling; provider default when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Cap on generated tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u64>,
    /// Attempts after the first one on retryable failures.
    #[serde(default = "default_num_retries")]
    pub num_retries: u32,
    /// Shortest wait between attempts, seconds.
    #[serde(default = "default_retry_min_wait")]
    pub retry_min_wait: f64,
    /// Longest wait between attempts, seconds.
    #[serde(default = "default_retry_max_wait")]
    pub retry_max_wait: f64,
    /// Growth of the wait between attempts.
    #[serde(default = "default_retry_multiplier")]
    pub retry_multiplier: f64,
    /// Per-attempt timeout, seconds.
    #[serde(default = "default_timeout", skip_serializing_if = "Option::is_none")]
    pub timeout: Option<f64>,
    /// Price per input token (overrides the built-in table).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_cost_per_token: Option<f64>,
    /// Price per output token (overrides the built-in table).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_cost_per_token: Option<f64>,
    /// Extra HTTP headers for the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_headers: Option<Map<String, Value>>,
    /// Drop parameters a provider does not support instead of failing.
    #[serde(default = "yes")]
    pub drop_params: bool,
    /// Mark the prompt for provider-side caching (Anthropic `cache_control`).
    #[serde(default = "yes")]
    pub caching_prompt: bool,
    /// Base URL of an Ollama server for `ollama/` models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ollama_base_url: Option<String>,
    /// Fields of the reference's `LLM` this crate does not use.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn default_usage_id() -> String {
    "default".into()
}
fn default_num_retries() -> u32 {
    5
}
fn default_retry_min_wait() -> f64 {
    8.0
}
fn default_retry_max_wait() -> f64 {
    64.0
}
fn default_retry_multiplier() -> f64 {
    8.0
}
fn default_timeout() -> Option<f64> {
    Some(300.0)
}
fn yes() -> bool {
    true
}

impl LlmConfig {
    /// A config for `model` with the reference's defaults.
    pub fn new(model: impl Into<String>) -> Self {
        LlmConfig {
            model: model.into(),
            api_key: None,
            base_url: None,
            usage_id: default_usage_id(),
            temperature: None,
            top_p: None,
            max_output_tokens: None,
            num_retries: default_num_retries(),
            retry_min_wait: default_retry_min_wait(),
            retry_max_wait: default_retry_max_wait(),
            retry_multiplier: default_retry_multiplier(),
            timeout: default_timeout(),
            input_cost_per_token: None,
            output_cost_per_token: None,
            extra_headers: None,
            drop_params: true,
            caching_prompt: true,
            ollama_base_url: None,
            extra: Map::new(),
        }
    }

    /// With this API key.
    pub fn with_api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(Secret::new(key));
        self
    }

    /// With this endpoint.
    pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// With this usage id.
    pub fn with_usage_id(mut self, id: impl Into<String>) -> Self {
        self.usage_id = id.into();
        self
    }

    /// From `LLM_MODEL` (default `anthropic/claude-sonnet-4-5-20250929`, the
    /// reference example's), `LLM_API_KEY` and `LLM_BASE_URL`; `None` when no
    /// key is set.
    pub fn from_env() -> Option<Self> {
        let key = std::env::var("LLM_API_KEY")
            .ok()
            .filter(|k| !k.is_empty())?;
        let model = std::env::var("LLM_MODEL")
            .ok()
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| "anthropic/claude-sonnet-4-5-20250929".into());
        let mut c = LlmConfig::new(model).with_api_key(key);
        c.base_url = std::env::var("LLM_BASE_URL").ok().filter(|u| !u.is_empty());
        Some(c)
    }

    /// The provider prefix (`openai` for `openai/gpt-4o`); models without a
    /// prefix are OpenAI's, as in LiteLLM.
    pub fn provider(&self) -> &str {
        match self.model.split_once('/') {
            Some((p, _)) => p,
            None if self.model.starts_with("claude") => "anthropic",
            None => "openai",
        }
    }

    /// The model name without the provider prefix.
    pub fn model_name(&self) -> &str {
        self.model.split_once('/').map_or(&self.model, |(_, m)| m)
    }

    /// The JSON with the real key, for sending to a server that must call the
    /// LLM itself (as the reference client does). Never log it.
    pub fn to_value_exposed(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        if let (Some(map), Some(key)) = (v.as_object_mut(), &self.api_key) {
            map.insert("api_key".into(), Value::String(key.expose().to_string()));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_reference_spec_and_masks_the_key() {
        let shared = std::env::var_os("OPENHANDS_SHARED")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"));
        let text = std::fs::read_to_string(shared.join("reference/agent_spec.json"));
        let text = text.expect("../shared/reference/agent_spec.json is readable");
        let spec: Value = serde_json::from_str(&text).unwrap();
        let mut llm = spec["llm"].clone();
        llm["api_key"] = Value::String("sk-very-secret".into());
        let cfg: LlmConfig = serde_json::from_value(llm).unwrap();
        assert_eq!(cfg.api_key.as_ref().unwrap().expose(), "sk-very-secret");
        assert!(!format!("{cfg:?}").contains("sk-very-secret"));
        let out = serde_json::to_string(&cfg).unwrap();
        assert!(!out.contains("sk-very-secret") && out.contains("**********"));
        assert!(cfg
            .to_value_exposed()
            .to_string()
            .contains("sk-very-secret"));
    }

    #[test]
    fn provider_routing_names() {
        assert_eq!(LlmConfig::new("openai/gpt-4o").provider(), "openai");
        assert_eq!(LlmConfig::new("gpt-4o").provider(), "openai");
        assert_eq!(LlmConfig::new("claude-3-5-sonnet").provider(), "anthropic");
        assert_eq!(LlmConfig::new("openrouter/x/y").model_name(), "x/y");
    }
}
