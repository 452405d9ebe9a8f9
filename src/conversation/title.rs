//! Conversation titles: ask a model for a short title of the first user
//! message; without a usable answer, fall back to the message itself, cut to
//! length.

use std::sync::Arc;

use crate::agent::prompt::{title_request, TITLE_SYSTEM_PROMPT};
use crate::llm::{CompletionRequest, Llm};
use crate::wire::{Event, Message, Role, Source};

/// The text of the first user message, if any.
pub fn first_user_text(events: &[Arc<Event>]) -> Option<String> {
    events.iter().find_map(|e| match e.as_ref() {
        Event::Message(m) if m.meta.source == Source::User => Some(m.llm_message.joined_text()),
        _ => None,
    })
}

/// Cuts `text` to at most `max` characters, ending with `...` when cut.
pub fn shorten(text: &str, max: usize) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        return one_line;
    }
    let keep = max.saturating_sub(3);
    format!(
        "{}...",
        one_line.chars().take(keep).collect::<String>().trim_end()
    )
}

/// A title of at most `max_length` characters for a conversation whose first
/// user message is `first`; `llm` writes it when given.
pub fn generate(first: &str, max_length: usize, llm: Option<&Llm>) -> String {
    if let Some(llm) = llm {
        let request = CompletionRequest {
            messages: vec![
                Message::text(Role::System, TITLE_SYSTEM_PROMPT),
                Message::text(Role::User, title_request(max_length, first)),
            ],
            tools: Vec::new(),
        };
        match llm.complete(&request) {
            Ok(c) => {
                let title = c.message.joined_text();
                let title = title.trim().trim_matches('"').trim();
                if !title.is_empty() {
                    return shorten(title, max_length);
                }
            }
            Err(e) => log::warn!("title generation failed, using the message instead: {e}"),
        }
    }
    shorten(first, max_length)
}
