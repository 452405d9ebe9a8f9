//! From the event log to what the model reads: one LLM message per event,
//! tool calls of one response merged into one assistant message, neighbouring
//! user messages joined.

use crate::tool::observation_text;
use crate::wire::{Content, Event, Message, Role, TextContent};

/// The messages for the model, oldest first.
pub fn to_messages(events: &[std::sync::Arc<Event>]) -> Vec<Message> {
    let mut out: Vec<Message> = Vec::new();
    let mut last_response: Option<String> = None;
    for event in events {
        let message = match event.as_ref() {
            Event::SystemPrompt(e) => {
                let mut m = Message::text(Role::System, e.system_prompt.text.clone());
                if let Some(d) = &e.dynamic_context {
                    m.content.push(Content::Text(d.clone()));
                }
                m
            }
            Event::Message(e) => {
                let mut m = e.llm_message.clone();
                m.content
                    .extend(e.extended_content.iter().cloned().map(Content::Text));
                m
            }
            Event::Action(e) => {
                if last_response.as_deref() == Some(e.llm_response_id.as_str()) {
                    if let Some(prev) = out.last_mut().filter(|m| m.role == Role::Assistant) {
                        prev.tool_calls
                            .get_or_insert_with(Vec::new)
                            .push(e.tool_call.clone());
                        continue;
                    }
                }
                last_response = Some(e.llm_response_id.clone());
                let mut m = Message::text(Role::Assistant, "");
                m.content = e.thought.iter().cloned().map(Content::Text).collect();
                m.reasoning_content = e.reasoning_content.clone();
                m.tool_calls = Some(vec![e.tool_call.clone()]);
                m
            }
            Event::Observation(e) => tool_message(
                &e.tool_name,
                &e.tool_call_id,
                observation_text(&e.observation),
            ),
            Event::AgentError(e) => tool_message(&e.tool_name, &e.tool_call_id, e.error.clone()),
            Event::UserReject(e) => tool_message(
                &e.tool_name,
                &e.tool_call_id,
                format!("Action rejected: {}", e.rejection_reason),
            ),
            _ => continue,
        };
        if !matches!(event.as_ref(), Event::Action(_)) {
            last_response = None;
        }
        let plain_user = |m: &Message| {
            m.role == Role::User && m.tool_calls.is_none() && m.tool_call_id.is_none()
        };
        if plain_user(&message) {
            if let Some(prev) = out.last_mut().filter(|p| plain_user(p)) {
                prev.content.extend(message.content);
                continue;
            }
        }
        out.push(message);
    }
    out
}

fn tool_message(name: &str, call_id: &str, text: String) -> Message {
    Message {
        role: Role::Tool,
        content: vec![Content::Text(TextContent::new(text))],
        tool_calls: None,
        tool_call_id: Some(call_id.to_string()),
        name: Some(name.to_string()),
        reasoning_content: None,
        thinking_blocks: Vec::new(),
        responses_reasoning_item: None,
    }
}
