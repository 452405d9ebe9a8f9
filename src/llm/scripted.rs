//! The built-in scripted model (`scripted/demo`): a real provider behind the
//! same trait as the others that plays a short, realistic tool-using session
//! with no network, so examples and tests run offline. It is used only when a
//! config names a `scripted/` model.
//!
//! It reads the conversation it is sent and answers its next step from it:
//! - a request without tools (titles) gets a short title of the first request;
//! - "... facts ... FACTS.txt": look around (`pwd && ls -la`), write three
//!   facts derived from what it saw with `file_editor create`, show the file,
//!   `finish`;
//! - "... delete/remove ...": `rm -f FACTS.txt && ls -la`, then `finish`;
//! - "echo ...": run it, then `finish`;
//! - anything else: a `think`, then `finish` explaining what it can do.

use serde_json::{json, Value};

use super::config::LlmConfig;
use super::error::LlmError;
use super::metrics::TokenUsage;
use super::types::{Completion, CompletionRequest};
use super::Provider;
use crate::wire::{Message, MessageToolCall, Role};

/// The scripted provider.
#[derive(Debug, Default)]
pub struct Scripted;

fn last_user(req: &CompletionRequest) -> (String, Vec<String>) {
    let idx = req.messages.iter().rposition(|m| m.role == Role::User);
    let text = idx
        .map(|i| req.messages[i].joined_text())
        .unwrap_or_default();
    let results = req.messages[idx.map_or(0, |i| i + 1)..]
        .iter()
        .filter(|m| m.role == Role::Tool)
        .map(Message::joined_text)
        .collect();
    (text, results)
}

fn title_for(text: &str) -> String {
    // The request for a title quotes the user's message after a blank line.
    let quoted = text.rsplit("\n\n").next().unwrap_or(text);
    let words: Vec<&str> = quoted.split_whitespace().take(7).collect();
    if words.is_empty() {
        "Scripted conversation".into()
    } else {
        format!("📝 {}", words.join(" ").trim_end_matches(['.', ',', ':']))
    }
}

/// Three facts about a directory, from `pwd && ls -la` output.
fn facts_from(listing: &str) -> (String, String) {
    let mut lines = listing.lines();
    let pwd = lines.next().unwrap_or(".").trim().to_string();
    let entries: Vec<&str> = lines
        .filter(|l| !l.starts_with("total") && !l.trim().is_empty() && !l.starts_with('['))
        .filter_map(|l| l.split_whitespace().last())
        .filter(|n| *n != "." && *n != "..")
        .collect();
    let dirs = listing
        .lines()
        .filter(|l| l.starts_with('d'))
        .count()
        .saturating_sub(2);
    let facts = format!(
        "1. The project directory is {pwd}.\n2. It holds {} entries ({} of them directories){}.\n3. These facts were written by the file_editor tool of an offline scripted agent.\n",
        entries.len(),
        dirs,
        if entries.is_empty() {
            String::new()
        } else {
            format!(": {}", entries.iter().take(5).cloned().collect::<Vec<_>>().join(", "))
        }
    );
    (pwd, facts)
}

fn plan(text: &str, results: &[String]) -> Vec<(&'static str, Value)> {
    let t = text.to_lowercase();
    if t.contains("delete") || t.contains("remove") {
        return vec![
            (
                "terminal",
                json!({"command": "rm -f FACTS.txt && ls -la", "security_risk": "MEDIUM", "summary": "Delete FACTS.txt"}),
            ),
            ("finish", json!({"message": "Deleted FACTS.txt."})),
        ];
    }
    if t.contains("facts") {
        let (pwd, facts) = facts_from(results.first().map(String::as_str).unwrap_or(""));
        let path = format!("{}/FACTS.txt", pwd.trim_end_matches('/'));
        return vec![
            (
                "terminal",
                json!({"command": "pwd && ls -la", "security_risk": "LOW", "summary": "Look at the project directory"}),
            ),
            (
                "file_editor",
                json!({"command": "create", "path": path, "file_text": facts, "security_risk": "LOW", "summary": "Write three facts to FACTS.txt"}),
            ),
            (
                "terminal",
                json!({"command": "cat FACTS.txt", "security_risk": "LOW", "summary": "Show the new file"}),
            ),
            (
                "finish",
                json!({"message": "Wrote 3 facts about the project to FACTS.txt."}),
            ),
        ];
    }
    if t.trim_start().starts_with("echo ") {
        return vec![
            (
                "terminal",
                json!({"command": text.trim(), "security_risk": "LOW"}),
            ),
            ("finish", json!({"message": "Done."})),
        ];
    }
    vec![
        (
            "think",
            json!({"thought": format!("The request was: {}. The scripted demo model only knows how to write and delete FACTS.txt.", text.trim())}),
        ),
        (
            "finish",
            json!({"message": "I am the offline scripted demo model: ask me to write 3 facts into FACTS.txt, or to delete it."}),
        ),
    ]
}

fn tokens(chars: usize) -> u64 {
    (chars as u64).div_ceil(4)
}

impl Provider for Scripted {
    fn complete(&self, cfg: &LlmConfig, req: &CompletionRequest) -> Result<Completion, LlmError> {
        let prompt_chars: usize = req
            .messages
            .iter()
            .map(|m| m.joined_text().len() + 16)
            .sum();
        let response_id = format!("scripted-{}", crate::util::id::uuid4_hex());
        let (text, results) = last_user(req);
        let message = if req.tools.is_empty() {
            Message::text(Role::Assistant, title_for(&text))
        } else {
            let steps = plan(&text, &results);
            let (name, args) = steps[results.len().min(steps.len() - 1)].clone();
            let offered = req.tools.iter().any(|t| t.name == name);
            if offered {
                let mut m = Message::text(Role::Assistant, "");
                m.content.clear();
                m.tool_calls = Some(vec![MessageToolCall {
                    id: format!("call_{}", &crate::util::id::uuid4_hex()[..24]),
                    responses_item_id: None,
                    name: name.to_string(),
                    arguments: args.to_string(),
                    origin: "completion".into(),
                }]);
                m
            } else {
                Message::text(
                    Role::Assistant,
                    format!("The `{name}` tool is not available, so I stop here."),
                )
            }
        };
        let out_chars = message.joined_text().len()
            + message
                .tool_calls
                .iter()
                .flatten()
                .map(|c| c.arguments.len())
                .sum::<usize>();
        Ok(Completion {
            usage: TokenUsage {
                model: cfg.model.clone(),
                prompt_tokens: tokens(prompt_chars),
                completion_tokens: tokens(out_chars),
                response_id: response_id.clone(),
                ..TokenUsage::default()
            },
            message,
            response_id,
            reported_cost: None,
        })
    }
}
