//! Language models: configuration ([`LlmConfig`]), providers (OpenAI-compatible
//! chat completions, Anthropic Messages, the offline [`scripted`] model), retries
//! with exponential backoff, and per-`usage_id` [`Metrics`].

pub mod anthropic;
pub mod config;
pub mod error;
mod http;
pub mod metrics;
pub mod openai;
pub mod scripted;
pub mod secret;
pub mod types;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use config::LlmConfig;
pub use error::{LlmError, LlmErrorKind};
pub use metrics::{ConversationStats, Metrics, TokenUsage};
pub use secret::Secret;
pub use types::{Completion, CompletionRequest, ToolSpec};

/// Something that answers completion requests.
pub trait Provider: Send + Sync {
    /// One attempt at a completion (retries happen in [`Llm`]).
    fn complete(
        &self,
        config: &LlmConfig,
        request: &CompletionRequest,
    ) -> Result<Completion, LlmError>;
}

/// The provider for a config: `scripted/` -> [`scripted::Scripted`],
/// `anthropic/` -> [`anthropic::Anthropic`], everything else the
/// OpenAI-compatible API.
pub fn provider_for(config: &LlmConfig) -> Arc<dyn Provider> {
    match config.provider() {
        "scripted" => Arc::new(scripted::Scripted),
        "anthropic" => Arc::new(anthropic::Anthropic),
        _ => Arc::new(openai::OpenAiCompatible),
    }
}

/// A configured model with its provider, retry policy and metrics. Clones
/// share metrics.
#[derive(Clone)]
pub struct Llm {
    config: LlmConfig,
    provider: Arc<dyn Provider>,
    metrics: Arc<Mutex<Metrics>>,
}

impl std::fmt::Debug for Llm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Llm").field("config", &self.config).finish()
    }
}

impl Llm {
    /// A model with the provider its name asks for.
    pub fn new(config: LlmConfig) -> Self {
        let provider = provider_for(&config);
        Self::with_provider(config, provider)
    }

    /// A model with an explicit provider (tests, custom backends).
    pub fn with_provider(config: LlmConfig, provider: Arc<dyn Provider>) -> Self {
        let metrics = Arc::new(Mutex::new(Metrics::new(&config.model)));
        Llm {
            config,
            provider,
            metrics,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &LlmConfig {
        &self.config
    }

    /// A copy of the metrics so far.
    pub fn metrics(&self) -> Metrics {
        self.metrics.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// Replaces the metrics (restoring a persisted conversation).
    pub fn restore_metrics(&self, metrics: Metrics) {
        if let Ok(mut m) = self.metrics.lock() {
            *m = metrics;
        }
    }

    /// The wait before retry number `attempt` (1-based): the provider's
    /// `Retry-After` if it sent one, else `multiplier * 2^(attempt-1)` seconds
    /// clamped to `[retry_min_wait, retry_max_wait]`.
    pub fn retry_wait(&self, attempt: u32, error: &LlmError) -> Duration {
        let c = &self.config;
        let max = c.retry_max_wait.max(0.0);
        let secs = match error.retry_after {
            Some(d) => d.as_secs_f64().min(max.max(1.0) * 2.0),
            None => (c.retry_multiplier * 2f64.powi(attempt as i32 - 1))
                .clamp(c.retry_min_wait.max(0.0).min(max), max),
        };
        Duration::from_secs_f64(if secs.is_finite() { secs.max(0.0) } else { 0.0 })
    }

    /// Asks the model, retrying rate limits, timeouts and 5xx up to
    /// `num_retries` times, and records usage and cost.
    pub fn complete(&self, request: &CompletionRequest) -> Result<Completion, LlmError> {
        let mut attempt = 0;
        loop {
            let started = Instant::now();
            match self.provider.complete(&self.config, request) {
                Ok(completion) => {
                    self.record(&completion, started.elapsed());
                    return Ok(completion);
                }
                Err(e) if e.is_retryable() && attempt < self.config.num_retries => {
                    attempt += 1;
                    let wait = self.retry_wait(attempt, &e);
                    log::warn!(
                        "LLM call to {} failed ({}); retry {attempt}/{} in {:.1}s",
                        self.config.model,
                        e.code(),
                        self.config.num_retries,
                        wait.as_secs_f64()
                    );
                    std::thread::sleep(wait);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The dollar cost of a completion: the provider's own figure, else the
    /// config's per-token prices, else the built-in table, else 0.
    pub fn cost_of(&self, completion: &Completion) -> f64 {
        if let Some(c) = completion.reported_cost {
            return c;
        }
        let c = &self.config;
        let prices = match (c.input_cost_per_token, c.output_cost_per_token) {
            (Some(i), Some(o)) => Some((i, o)),
            _ => metrics::table_price(c.model_name()),
        };
        let u = &completion.usage;
        prices.map_or(0.0, |(i, o)| {
            u.prompt_tokens as f64 * i + u.completion_tokens as f64 * o
        })
    }

    fn record(&self, completion: &Completion, latency: Duration) {
        let cost = self.cost_of(completion);
        if let Ok(mut m) = self.metrics.lock() {
            m.record(&completion.usage, cost, latency.as_secs_f64());
        }
    }
}
