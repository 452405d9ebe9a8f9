//! Anthropic's native Messages API (`anthropic/` models): system prompt as a
//! top-level block, `tool_use`/`tool_result` blocks, prompt caching marks on
//! the system prompt and the latest user turn when `caching_prompt` is on.

use serde_json::{json, Value};

use super::config::LlmConfig;
use super::error::{LlmError, LlmErrorKind};
use super::http::post_for;
use super::metrics::TokenUsage;
use super::types::{assistant_message, response_id, Completion, CompletionRequest};
use super::Provider;
use crate::wire::{Content, Message, MessageToolCall, Role};

/// The API version header we speak.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";
const DEFAULT_MAX_TOKENS: u64 = 8192;

/// The Anthropic provider.
#[derive(Debug, Default)]
pub struct Anthropic;

fn blocks(m: &Message) -> Vec<Value> {
    let mut out: Vec<Value> = m
        .content
        .iter()
        .filter_map(|c| match c {
            Content::Text(t) if !t.text.is_empty() => Some(json!({"type": "text", "text": t.text})),
            _ => None,
        })
        .collect();
    for call in m.tool_calls.iter().flatten() {
        let input: Value = serde_json::from_str(&call.arguments).unwrap_or_else(|_| json!({}));
        out.push(json!({"type": "tool_use", "id": call.id, "name": call.name, "input": input}));
    }
    out
}

/// Builds the Messages API body.
pub fn request_body(cfg: &LlmConfig, req: &CompletionRequest) -> Value {
    let mut system = Vec::new();
    let mut messages: Vec<Value> = Vec::new();
    for m in &req.messages {
        let (role, content) = match m.role {
            Role::System => {
                system.push(json!({"type": "text", "text": m.joined_text()}));
                continue;
            }
            Role::Tool => (
                "user",
                vec![json!({
                    "type": "tool_result",
                    "tool_use_id": m.tool_call_id.clone().unwrap_or_default(),
                    "content": m.joined_text(),
                })],
            ),
            Role::User => ("user", blocks(m)),
            Role::Assistant => ("assistant", blocks(m)),
        };
        if content.is_empty() {
            continue;
        }
        // The API wants alternating roles: merge neighbours of the same role.
        match messages.last_mut() {
            Some(last) if last["role"] == role => {
                if let Some(arr) = last["content"].as_array_mut() {
                    arr.extend(content);
                }
            }
            _ => messages.push(json!({"role": role, "content": content})),
        }
    }
    if cfg.caching_prompt {
        if let Some(last) = system.last_mut() {
            last["cache_control"] = json!({"type": "ephemeral"});
        }
        if let Some(block) = messages
            .iter_mut()
            .rev()
            .find(|m| m["role"] == "user")
            .and_then(|m| m["content"].as_array_mut())
            .and_then(|a| a.last_mut())
        {
            block["cache_control"] = json!({"type": "ephemeral"});
        }
    }
    let mut body = json!({
        "model": cfg.model_name(),
        "max_tokens": cfg.max_output_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        "messages": messages,
    });
    if !system.is_empty() {
        body["system"] = Value::Array(system);
    }
    if !req.tools.is_empty() {
        body["tools"] = req
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.parameters}))
            .collect();
    }
    if let Some(t) = cfg.temperature {
        body["temperature"] = json!(t);
    }
    if let Some(p) = cfg.top_p {
        body["top_p"] = json!(p);
    }
    body
}

/// Parses a Messages API answer.
pub fn parse_response(body: &Value, model: &str) -> Result<Completion, LlmError> {
    let content = body
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| LlmError::new(LlmErrorKind::BadResponse, "the answer has no content"))?;
    let mut text = String::new();
    let mut calls = Vec::new();
    for block in content {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(block.get("text").and_then(Value::as_str).unwrap_or("")),
            Some("tool_use") => calls.push(MessageToolCall {
                id: block
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                responses_item_id: None,
                name: block
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                arguments: block.get("input").cloned().unwrap_or(json!({})).to_string(),
                origin: "completion".into(),
            }),
            _ => {}
        }
    }
    let message = assistant_message(&text, calls);
    let u = body.get("usage").cloned().unwrap_or(Value::Null);
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    let response_id = response_id(body);
    Ok(Completion {
        message,
        usage: TokenUsage {
            model: model.to_string(),
            prompt_tokens: n("input_tokens")
                + n("cache_read_input_tokens")
                + n("cache_creation_input_tokens"),
            completion_tokens: n("output_tokens"),
            cache_read_tokens: n("cache_read_input_tokens"),
            cache_write_tokens: n("cache_creation_input_tokens"),
            reasoning_tokens: 0,
            context_window: 0,
            per_turn_token: 0,
            response_id: response_id.clone(),
        },
        response_id,
        reported_cost: None,
    })
}

impl Provider for Anthropic {
    fn complete(&self, cfg: &LlmConfig, req: &CompletionRequest) -> Result<Completion, LlmError> {
        let base = cfg
            .base_url
            .clone()
            .unwrap_or_else(|| "https://api.anthropic.com".into());
        let base = base.trim_end_matches('/').trim_end_matches("/v1");
        let url = format!("{base}/v1/messages");
        let mut headers = vec![
            ("Content-Type".to_string(), "application/json".to_string()),
            (
                "anthropic-version".to_string(),
                ANTHROPIC_VERSION.to_string(),
            ),
        ];
        if let Some(key) = cfg.api_key.as_ref().filter(|k| !k.is_unusable()) {
            headers.push(("x-api-key".into(), key.expose().to_string()));
        }
        let answer = post_for(cfg, &url, headers, &request_body(cfg, req))?;
        parse_response(&answer.body, &cfg.model)
    }
}
