//! OpenAI-compatible chat completions (`/chat/completions` with tools), used
//! for `openai/`, `openrouter/`, `ollama/`, `litellm_proxy/`, `openhands/` and
//! any model with a `base_url`.

use serde_json::{json, Map, Value};

use super::config::LlmConfig;
use super::error::{LlmError, LlmErrorKind};
use super::http::post_for;
use super::metrics::TokenUsage;
use super::types::{assistant_message, response_id, Completion, CompletionRequest};
use super::Provider;
use crate::wire::{Content, Message, MessageToolCall, Role};

/// The OpenAI-compatible provider.
#[derive(Debug, Default)]
pub struct OpenAiCompatible;

/// Endpoint and wire model name for a config, following the reference's
/// routing (`openhands/x` goes to the OpenHands proxy as `litellm_proxy/x`).
pub fn endpoint(cfg: &LlmConfig) -> Result<(String, String), LlmError> {
    let name = cfg.model_name().to_string();
    let base = match cfg.provider() {
        "openhands" => cfg
            .base_url
            .clone()
            .unwrap_or_else(|| "https://llm-proxy.app.all-hands.dev".into()),
        "ollama" => cfg
            .base_url
            .clone()
            .or_else(|| cfg.ollama_base_url.clone())
            .map(|u| format!("{}/v1", u.trim_end_matches('/').trim_end_matches("/v1")))
            .unwrap_or_else(|| "http://localhost:11434/v1".into()),
        "openrouter" => cfg
            .base_url
            .clone()
            .unwrap_or_else(|| "https://openrouter.ai/api/v1".into()),
        "litellm_proxy" => cfg.base_url.clone().ok_or_else(|| {
            LlmError::new(
                LlmErrorKind::Config,
                "litellm_proxy/ models need a base_url",
            )
        })?,
        _ => cfg
            .base_url
            .clone()
            .unwrap_or_else(|| "https://api.openai.com/v1".into()),
    };
    let url = format!("{}/chat/completions", base.trim_end_matches('/'));
    Ok((url, name))
}

/// One message in the chat-completions format.
pub fn chat_message(m: &Message) -> Value {
    let text = |m: &Message| m.joined_text();
    match m.role {
        Role::Tool => json!({
            "role": "tool",
            "tool_call_id": m.tool_call_id.clone().unwrap_or_default(),
            "name": m.name.clone().unwrap_or_default(),
            "content": text(m),
        }),
        Role::Assistant => {
            let mut v = json!({"role": "assistant", "content": text(m)});
            if let Some(calls) = m.tool_calls.as_ref().filter(|c| !c.is_empty()) {
                v["tool_calls"] = calls
                    .iter()
                    .map(|c| {
                        json!({"id": c.id, "type": "function",
                               "function": {"name": c.name, "arguments": c.arguments}})
                    })
                    .collect();
                if m.joined_text().is_empty() {
                    v["content"] = Value::Null;
                }
            }
            v
        }
        Role::System | Role::User => {
            let parts: Vec<Value> = m
                .content
                .iter()
                .flat_map(|c| match c {
                    Content::Text(t) => vec![json!({"type": "text", "text": t.text})],
                    Content::Image(i) => i
                        .image_urls
                        .iter()
                        .map(|u| json!({"type": "image_url", "image_url": {"url": u}}))
                        .collect(),
                })
                .collect();
            let role = if m.role == Role::System {
                "system"
            } else {
                "user"
            };
            json!({"role": role, "content": parts})
        }
    }
}

/// Builds the request body.
pub fn request_body(cfg: &LlmConfig, model: &str, req: &CompletionRequest) -> Value {
    let mut body = Map::new();
    body.insert("model".into(), json!(model));
    body.insert(
        "messages".into(),
        req.messages.iter().map(chat_message).collect(),
    );
    if !req.tools.is_empty() {
        body.insert(
            "tools".into(),
            req.tools.iter().map(|t| t.to_openai()).collect(),
        );
    }
    if let Some(t) = cfg.temperature {
        body.insert("temperature".into(), json!(t));
    }
    if let Some(p) = cfg.top_p {
        body.insert("top_p".into(), json!(p));
    }
    if let Some(n) = cfg.max_output_tokens {
        body.insert("max_tokens".into(), json!(n));
    }
    Value::Object(body)
}

/// Parses a chat-completions answer.
pub fn parse_response(body: &Value, model: &str) -> Result<Completion, LlmError> {
    let bad = |what: &str| {
        LlmError::new(
            LlmErrorKind::BadResponse,
            format!("the answer has no {what}"),
        )
    };
    let msg = body
        .pointer("/choices/0/message")
        .ok_or_else(|| bad("choices[0].message"))?;
    let content = msg.get("content").and_then(Value::as_str).unwrap_or("");
    let mut tool_calls = Vec::new();
    for (i, c) in msg
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let f = c
            .get("function")
            .ok_or_else(|| bad("tool_calls[].function"))?;
        let arguments = match f.get("arguments") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => "{}".into(),
        };
        tool_calls.push(MessageToolCall {
            id: c
                .get("id")
                .and_then(Value::as_str)
                .map(String::from)
                .unwrap_or_else(|| format!("call_{i}")),
            responses_item_id: None,
            name: f
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            arguments,
            origin: "completion".into(),
        });
    }
    let mut message = assistant_message(content, tool_calls);
    message.reasoning_content = msg
        .get("reasoning_content")
        .and_then(Value::as_str)
        .map(String::from);
    let u = body.get("usage").cloned().unwrap_or(Value::Null);
    let n = |p: &str| u.pointer(p).and_then(Value::as_u64).unwrap_or(0);
    let response_id = response_id(body);
    Ok(Completion {
        message,
        usage: TokenUsage {
            model: model.to_string(),
            prompt_tokens: n("/prompt_tokens"),
            completion_tokens: n("/completion_tokens"),
            cache_read_tokens: n("/prompt_tokens_details/cached_tokens"),
            cache_write_tokens: 0,
            reasoning_tokens: n("/completion_tokens_details/reasoning_tokens"),
            context_window: 0,
            per_turn_token: 0,
            response_id: response_id.clone(),
        },
        response_id,
        reported_cost: None,
    })
}

impl Provider for OpenAiCompatible {
    fn complete(&self, cfg: &LlmConfig, req: &CompletionRequest) -> Result<Completion, LlmError> {
        let (url, model) = endpoint(cfg)?;
        let mut headers = vec![("Content-Type".to_string(), "application/json".to_string())];
        if let Some(key) = cfg.api_key.as_ref().filter(|k| !k.is_unusable()) {
            headers.push(("Authorization".into(), format!("Bearer {}", key.expose())));
        }
        if cfg.provider() == "openrouter" {
            headers.push(("HTTP-Referer".into(), "https://docs.all-hands.dev/".into()));
            headers.push(("X-Title".into(), "OpenHands".into()));
        }
        let answer = post_for(cfg, &url, headers, &request_body(cfg, &model, req))?;
        let mut completion = parse_response(&answer.body, &cfg.model)?;
        completion.reported_cost = answer.litellm_cost;
        Ok(completion)
    }
}
