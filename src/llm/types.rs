//! What goes to a provider and what comes back, independent of its API.

use serde_json::Value;

use super::metrics::TokenUsage;
use crate::wire::Message;

/// A tool as the model sees it: name, description, JSON schema of arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    /// The function name (`terminal`, `file_editor`, ...).
    pub name: String,
    /// What the tool does and how to use it.
    pub description: String,
    /// JSON schema of the arguments object.
    pub parameters: Value,
}

impl ToolSpec {
    /// The OpenAI `{"type": "function", "function": {...}}` form.
    pub fn to_openai(&self) -> Value {
        serde_json::json!({
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            }
        })
    }
}

/// One request to a model.
#[derive(Debug, Clone, Default)]
pub struct CompletionRequest {
    /// The conversation so far, system prompt first.
    pub messages: Vec<Message>,
    /// Tools the model may call (empty: plain text answer).
    pub tools: Vec<ToolSpec>,
}

/// One answer from a model.
#[derive(Debug, Clone)]
pub struct Completion {
    /// The assistant message (text and/or tool calls).
    pub message: Message,
    /// The provider's response id.
    pub response_id: String,
    /// Tokens used.
    pub usage: TokenUsage,
    /// Cost the provider reported itself (LiteLLM proxies do), in dollars.
    pub reported_cost: Option<f64>,
}

/// An assistant message from a provider's answer: its text (no part when
/// empty) and tool calls (none when empty).
pub fn assistant_message(text: &str, calls: Vec<crate::wire::MessageToolCall>) -> Message {
    let mut message = Message::text(crate::wire::Role::Assistant, text);
    if text.is_empty() {
        message.content.clear();
    }
    if !calls.is_empty() {
        message.tool_calls = Some(calls);
    }
    message
}

/// The `id` of a provider's answer, empty when absent.
pub fn response_id(body: &Value) -> String {
    body.get("id")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}
