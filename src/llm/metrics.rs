//! Token and cost accounting in the reference's JSON shape (`Metrics`,
//! `ConversationStats`), and the built-in price table.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Tokens of one call, or accumulated.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TokenUsage {
    /// Model name.
    #[serde(default)]
    pub model: String,
    /// Input tokens.
    #[serde(default)]
    pub prompt_tokens: u64,
    /// Output tokens.
    #[serde(default)]
    pub completion_tokens: u64,
    /// Input tokens served from the provider's cache.
    #[serde(default)]
    pub cache_read_tokens: u64,
    /// Input tokens written to the provider's cache.
    #[serde(default)]
    pub cache_write_tokens: u64,
    /// Reasoning tokens.
    #[serde(default)]
    pub reasoning_tokens: u64,
    /// Context window of the model (0 when unknown).
    #[serde(default)]
    pub context_window: u64,
    /// Prompt plus completion tokens of the latest call.
    #[serde(default)]
    pub per_turn_token: u64,
    /// The provider's response id (empty when accumulated).
    #[serde(default)]
    pub response_id: String,
}

impl TokenUsage {
    /// Adds `other`: counts summed, the larger context window, `other`'s
    /// latest turn.
    pub fn add(&mut self, other: &TokenUsage) {
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
        self.cache_read_tokens += other.cache_read_tokens;
        self.cache_write_tokens += other.cache_write_tokens;
        self.reasoning_tokens += other.reasoning_tokens;
        self.context_window = self.context_window.max(other.context_window);
        self.per_turn_token = other.per_turn_token;
    }
}

/// The cost of one call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    /// Model name.
    pub model: String,
    /// US dollars.
    pub cost: f64,
    /// Unix time, seconds.
    pub timestamp: f64,
}

/// How long one call took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseLatency {
    /// Model name.
    pub model: String,
    /// Seconds.
    pub latency: f64,
    /// The provider's response id.
    pub response_id: String,
}

/// Everything spent by one LLM (one `usage_id`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Model name.
    #[serde(default)]
    pub model_name: String,
    /// Total US dollars.
    #[serde(default)]
    pub accumulated_cost: f64,
    /// Spending cap, if any.
    #[serde(default)]
    pub max_budget_per_task: Option<f64>,
    /// Sum of token usage.
    #[serde(default)]
    pub accumulated_token_usage: TokenUsage,
    /// One entry per priced call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub costs: Vec<Cost>,
    /// One entry per call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub response_latencies: Vec<ResponseLatency>,
    /// One entry per call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub token_usages: Vec<TokenUsage>,
}

impl Metrics {
    /// Empty metrics for `model`.
    pub fn new(model: &str) -> Self {
        Metrics {
            model_name: model.to_string(),
            accumulated_token_usage: TokenUsage {
                model: model.to_string(),
                ..TokenUsage::default()
            },
            ..Metrics::default()
        }
    }

    /// Records one call.
    pub fn record(&mut self, usage: &TokenUsage, cost: f64, latency: f64) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        if cost > 0.0 {
            self.accumulated_cost += cost;
            self.costs.push(Cost {
                model: self.model_name.clone(),
                cost,
                timestamp: now,
            });
        }
        self.response_latencies.push(ResponseLatency {
            model: self.model_name.clone(),
            latency,
            response_id: usage.response_id.clone(),
        });
        let mut one = usage.clone();
        one.per_turn_token = usage.prompt_tokens + usage.completion_tokens;
        self.accumulated_token_usage.add(&one);
        self.token_usages.push(one);
    }

    /// The first four fields only (what state updates carry).
    pub fn snapshot(&self) -> Metrics {
        Metrics {
            costs: Vec::new(),
            response_latencies: Vec::new(),
            token_usages: Vec::new(),
            ..self.clone()
        }
    }

    /// Adds `other` into `self` (costs summed, lists joined).
    pub fn merge(&mut self, other: &Metrics) {
        self.accumulated_cost += other.accumulated_cost;
        self.costs.extend(other.costs.iter().cloned());
        self.response_latencies
            .extend(other.response_latencies.iter().cloned());
        self.token_usages.extend(other.token_usages.iter().cloned());
        self.accumulated_token_usage
            .add(&other.accumulated_token_usage);
    }
}

/// `{"usage_to_metrics": {usage_id: Metrics}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConversationStats {
    /// Metrics per usage id.
    #[serde(default)]
    pub usage_to_metrics: BTreeMap<String, Metrics>,
}

impl ConversationStats {
    /// All usage ids combined.
    pub fn combined_metrics(&self) -> Metrics {
        let mut all = Metrics::default();
        for m in self.usage_to_metrics.values() {
            all.merge(m);
        }
        all
    }

    /// The same stats with per-call lists dropped.
    pub fn snapshot(&self) -> ConversationStats {
        ConversationStats {
            usage_to_metrics: self
                .usage_to_metrics
                .iter()
                .map(|(k, v)| (k.clone(), v.snapshot()))
                .collect(),
        }
    }
}

/// Built-in prices, US dollars per million tokens (input, output), for
/// common models. Numbers are the providers' public list prices as published
/// on their pricing pages in 2025; set `input_cost_per_token` /
/// `output_cost_per_token` on the config to override or to price other models.
const PRICES_PER_MILLION: &[(&str, f64, f64)] = &[
    ("gpt-4o-mini", 0.15, 0.60),
    ("gpt-4o", 2.50, 10.00),
    ("gpt-4.1-mini", 0.40, 1.60),
    ("gpt-4.1-nano", 0.10, 0.40),
    ("gpt-4.1", 2.00, 8.00),
    ("gpt-5-mini", 0.25, 2.00),
    ("gpt-5-nano", 0.05, 0.40),
    ("gpt-5", 1.25, 10.00),
    ("o4-mini", 1.10, 4.40),
    ("o3", 2.00, 8.00),
    ("claude-opus-4", 15.00, 75.00),
    ("claude-sonnet-4", 3.00, 15.00),
    ("claude-3-7-sonnet", 3.00, 15.00),
    ("claude-3-5-sonnet", 3.00, 15.00),
    ("claude-haiku-4-5", 1.00, 5.00),
    ("claude-3-5-haiku", 0.80, 4.00),
    ("gemini-2.5-pro", 1.25, 10.00),
    ("gemini-2.5-flash", 0.30, 2.50),
    ("deepseek-chat", 0.27, 1.10),
];

/// Price per token (input, output) of `model` from the table: the longest
/// entry that the model name (without provider prefix) starts with.
pub fn table_price(model_name: &str) -> Option<(f64, f64)> {
    let name = model_name.rsplit('/').next().unwrap_or(model_name);
    PRICES_PER_MILLION
        .iter()
        .filter(|(prefix, _, _)| name.starts_with(prefix))
        .max_by_key(|(prefix, _, _)| prefix.len())
        .map(|(_, i, o)| (i / 1e6, o / 1e6))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_combines() {
        let mut m = Metrics::new("openai/gpt-4o");
        let u = TokenUsage {
            prompt_tokens: 100,
            completion_tokens: 20,
            response_id: "r1".into(),
            ..TokenUsage::default()
        };
        m.record(&u, 0.01, 1.2);
        assert_eq!(m.accumulated_token_usage.per_turn_token, 120);
        let mut stats = ConversationStats::default();
        stats.usage_to_metrics.insert("agent".into(), m.clone());
        stats.usage_to_metrics.insert("title".into(), m);
        let all = stats.combined_metrics();
        assert!((all.accumulated_cost - 0.02).abs() < 1e-12);
        assert_eq!(all.accumulated_token_usage.prompt_tokens, 200);
        let snap = serde_json::to_value(stats.snapshot()).unwrap();
        assert!(snap["usage_to_metrics"]["agent"].get("costs").is_none());
        assert_eq!(
            table_price("gpt-4o-mini-2024"),
            Some((0.15 / 1e6, 0.6 / 1e6))
        );
        assert_eq!(
            table_price("claude-sonnet-4-5"),
            Some((3.0 / 1e6, 15.0 / 1e6))
        );
        assert_eq!(table_price("unknown"), None);
    }
}
