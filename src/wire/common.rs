//! Shapes shared by many messages: LLM message content, tool calls, pages,
//! `{"success": true}` and the reference's error bodies.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// A JSON object with fields this crate does not model, kept for round trips.
pub type Extra = Map<String, Value>;

macro_rules! literal_tag {
    ($(#[$m:meta])* $name:ident = $lit:literal) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct $name;
        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str($lit)
            }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                if s == $lit {
                    Ok($name)
                } else {
                    Err(serde::de::Error::custom(format_args!("expected \"{}\", got \"{s}\"", $lit)))
                }
            }
        }
    };
}

literal_tag!(
    /// The `"type": "text"` marker of [`TextContent`].
    TextTag = "text"
);
literal_tag!(
    /// The `"type": "image"` marker of [`ImageContent`].
    ImageTag = "image"
);

/// `{"cache_prompt": false, "type": "text", "text": "..."}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextContent {
    /// Whether the LLM provider may cache the prompt up to here.
    #[serde(default)]
    pub cache_prompt: bool,
    /// Always `"text"`.
    #[serde(rename = "type", default)]
    pub tag: TextTag,
    /// The text.
    pub text: String,
}

impl TextContent {
    /// Text content with prompt caching off.
    pub fn new(text: impl Into<String>) -> Self {
        TextContent {
            cache_prompt: false,
            tag: TextTag,
            text: text.into(),
        }
    }
}

/// `{"cache_prompt": false, "type": "image", "image_urls": [...]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageContent {
    /// Whether the LLM provider may cache the prompt up to here.
    #[serde(default)]
    pub cache_prompt: bool,
    /// Always `"image"`.
    #[serde(rename = "type")]
    pub tag: ImageTag,
    /// `data:` or `https:` URLs.
    pub image_urls: Vec<String>,
}

/// One part of a message's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Content {
    /// Text.
    Text(TextContent),
    /// Images.
    Image(ImageContent),
}

impl Content {
    /// The text of a text part, `None` for images.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Content::Text(t) => Some(&t.text),
            Content::Image(_) => None,
        }
    }
}

/// Accepts a content list, a bare string (one text part) or null (no parts).
pub(crate) fn content_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Content>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        List(Vec<Content>),
        Text(String),
    }
    Ok(match Option::<Raw>::deserialize(d)? {
        None => Vec::new(),
        Some(Raw::List(v)) => v,
        Some(Raw::Text(s)) => vec![Content::Text(TextContent::new(s))],
    })
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The person driving the agent.
    #[default]
    User,
    /// The system prompt.
    System,
    /// The model.
    Assistant,
    /// A tool result.
    Tool,
}

/// A tool call the model asked for; `arguments` is a JSON string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageToolCall {
    /// The provider's call id (`call_...`, `toolu_...`).
    pub id: String,
    /// The Responses API item id, when that API was used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responses_item_id: Option<String>,
    /// Tool name.
    pub name: String,
    /// Arguments as a JSON string, exactly as the model produced them.
    pub arguments: String,
    /// `"completion"` or `"responses"`.
    #[serde(default = "origin_completion")]
    pub origin: String,
}

fn origin_completion() -> String {
    "completion".to_string()
}

/// A message in the LLM's conversation (`openhands.sdk.llm.Message`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// Its content parts.
    #[serde(default, deserialize_with = "content_list")]
    pub content: Vec<Content>,
    /// Tool calls of an assistant message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<MessageToolCall>>,
    /// The call a tool message answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// The tool name of a tool message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Reasoning text some models return.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    /// Anthropic thinking blocks.
    #[serde(default)]
    pub thinking_blocks: Vec<Value>,
    /// OpenAI Responses reasoning item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responses_reasoning_item: Option<Value>,
}

impl Message {
    /// A message with one text part.
    pub fn text(role: Role, text: impl Into<String>) -> Self {
        Message {
            role,
            content: vec![Content::Text(TextContent::new(text))],
            tool_calls: None,
            tool_call_id: None,
            name: None,
            reasoning_content: None,
            thinking_blocks: Vec::new(),
            responses_reasoning_item: None,
        }
    }

    /// All text parts joined with newlines.
    pub fn joined_text(&self) -> String {
        self.content
            .iter()
            .filter_map(Content::as_text)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// `{"success": true}`, the answer of mutating routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Success {
    /// Always true in practice.
    pub success: bool,
}

impl Default for Success {
    fn default() -> Self {
        Success { success: true }
    }
}

/// A page of items: `{"items": [...], "next_page_id": "..." | null}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Id of the first item of the next page, `null` on the last page.
    #[serde(default)]
    pub next_page_id: Option<String>,
}

/// The error body of FastAPI: `{"detail": "..."}` or `{"detail": [...]}`
/// (validation errors), plus `exception`/`error_id` on 500s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A message, or a list of [`ValidationError`]s for 422.
    pub detail: Value,
    /// The exception text of a 500.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exception: Option<String>,
    /// A correlation id of a 500, also written to the server log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_id: Option<String>,
}

/// One entry of a 422 body: `{"type","loc","msg","input"[,"ctx"]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationError {
    /// Machine-readable error type (`missing`, `int_parsing`, `json_invalid`, ...).
    #[serde(rename = "type")]
    pub error_type: String,
    /// Where: `["body", "command"]`, `["query", "limit"]`, ...
    pub loc: Vec<Value>,
    /// Human-readable message.
    pub msg: String,
    /// The offending input.
    pub input: Value,
    /// Extra context (`{"le": 100}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ctx: Option<Value>,
}
