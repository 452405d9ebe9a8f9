//! `/api/conversations/...`: conversations and their events.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::agent::confirmation::ConfirmationPolicy;
use crate::server::conversations::Entry;
use crate::server::http::{not_an_object, ApiError, ApiRequest, ApiResponse};
use crate::server::routes::bash::uuid_param;
use crate::server::App;
use crate::wire::{
    Content, Event, ExecutionStatus, Message, Page, Role, SendMessageRequest, Source,
    StartConversationRequest,
};

fn entry(app: &App, id: &str) -> Result<Arc<Entry>, ApiError> {
    uuid_param(id, "conversation_id")?;
    app.conversations.get(id).ok_or_else(ApiError::not_found)
}

fn status_query(req: &ApiRequest) -> Result<Option<ExecutionStatus>, ApiError> {
    match req.query("status") {
        None => Ok(None),
        Some(raw) => serde_json::from_value(json!(raw)).map(Some).map_err(|_| {
            ApiError::validation(
                "enum",
                &["query", "status"],
                "Input should be a valid execution status",
                json!(raw),
            )
        }),
    }
}

/// `POST /api/conversations` -> 201 (new) or 200 (existing id).
pub fn create(app: &App, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let start: StartConversationRequest = req.json()?;
    for (field, value) in [("agent", &start.agent), ("workspace", &start.workspace)] {
        if !value.is_object() {
            return Err(not_an_object(&["body", field], value.clone()));
        }
    }
    let (entry, is_new) = app.conversations.create(start).map_err(|e| match e {
        crate::Error::InvalidInput(m) => ApiError::Unprocessable(m),
        other => ApiError::internal(other.to_string()),
    })?;
    let info = app.conversations.info(&entry)?;
    Ok(ApiResponse::json_status(
        if is_new { 201 } else { 200 },
        &info,
    ))
}

/// `GET /api/conversations/{id}`.
pub fn get(app: &App, id: &str) -> Result<ApiResponse, ApiError> {
    let e = entry(app, id)?;
    Ok(ApiResponse::json(&app.conversations.info(&e)?))
}

/// `GET /api/conversations?ids=...` -> infos or nulls.
pub fn batch(app: &App, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let ids: Vec<&str> = req
        .query
        .iter()
        .filter(|(k, _)| k == "ids")
        .map(|(_, v)| v.as_str())
        .collect();
    let infos: Vec<Value> = ids
        .iter()
        .map(|id| {
            app.conversations
                .get(id)
                .and_then(|e| app.conversations.info(&e).ok())
                .and_then(|i| serde_json::to_value(i).ok())
                .unwrap_or(Value::Null)
        })
        .collect();
    Ok(ApiResponse::json(&infos))
}

/// `GET /api/conversations/search`.
pub fn search(app: &App, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let limit = req.int_query("limit", 1, 100)?.unwrap_or(100) as usize;
    let status = status_query(req)?;
    let sort = req.query("sort_order").unwrap_or("CREATED_AT_DESC");
    if ![
        "CREATED_AT",
        "UPDATED_AT",
        "CREATED_AT_DESC",
        "UPDATED_AT_DESC",
    ]
    .contains(&sort)
    {
        return Err(ApiError::validation(
            "enum",
            &["query", "sort_order"],
            "Input should be a valid sort order",
            json!(sort),
        ));
    }
    let mut infos: Vec<_> = app
        .conversations
        .all()
        .iter()
        .filter_map(|e| app.conversations.info(e).ok())
        .filter(|i| status.is_none_or(|s| i.execution_status == s))
        .collect();
    let key = |i: &crate::wire::ConversationInfo| {
        if sort.starts_with("UPDATED") {
            i.updated_at.clone()
        } else {
            i.created_at.clone()
        }
    };
    infos.sort_by_key(key);
    if sort.ends_with("_DESC") {
        infos.reverse();
    }
    let start = req
        .query("page_id")
        .and_then(|p| {
            infos.iter().position(|i| {
                i.id == p
                    || crate::util::id::normalize_uuid(&i.id) == crate::util::id::normalize_uuid(p)
            })
        })
        .unwrap_or(0);
    let rest = &infos[start.min(infos.len())..];
    let next_page_id = rest.get(limit).map(|i| i.id.clone());
    Ok(ApiResponse::json(&Page {
        items: rest.iter().take(limit).cloned().collect(),
        next_page_id,
    }))
}

/// `GET /api/conversations/count`.
pub fn count(app: &App, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let status = status_query(req)?;
    let n = app
        .conversations
        .all()
        .iter()
        .filter_map(|e| app.conversations.info(e).ok())
        .filter(|i| status.is_none_or(|s| i.execution_status == s))
        .count();
    Ok(ApiResponse::json(&n))
}

#[derive(Deserialize)]
struct UpdateRequest {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    tags: Option<Map<String, Value>>,
}

/// `PATCH /api/conversations/{id}` (title, tags).
pub fn update(app: &App, id: &str, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let e = entry(app, id)?;
    let body: UpdateRequest = req.json()?;
    app.conversations.update(&e, body.title, body.tags);
    Ok(ApiResponse::success())
}

/// `DELETE /api/conversations/{id}`.
pub fn delete(app: &App, id: &str) -> Result<ApiResponse, ApiError> {
    uuid_param(id, "conversation_id")?;
    if app.conversations.delete(id) {
        Ok(ApiResponse::success())
    } else {
        Err(ApiError::not_found())
    }
}

fn start_run(app: &App, e: &Arc<Entry>) -> Result<ApiResponse, ApiError> {
    match app.conversations.start_run(e) {
        Ok(true) => Ok(ApiResponse::success()),
        Ok(false) => Err(ApiError::Conflict(
            "Conversation already running. Wait for completion or pause first.".into(),
        )),
        Err(crate::Error::InvalidInput(m)) => Err(ApiError::BadRequest(m)),
        Err(other) => Err(ApiError::internal(other.to_string())),
    }
}

/// `POST /api/conversations/{id}/run`.
pub fn run(app: &App, id: &str) -> Result<ApiResponse, ApiError> {
    let e = entry(app, id)?;
    start_run(app, &e)
}

/// `POST /api/conversations/{id}/pause`.
pub fn pause(app: &App, id: &str) -> Result<ApiResponse, ApiError> {
    let e = entry(app, id)?;
    app.conversations.conversation(&e)?.pause()?;
    Ok(ApiResponse::success())
}

#[derive(Deserialize)]
struct PolicyRequest {
    policy: ConfirmationPolicy,
}

/// `POST /api/conversations/{id}/confirmation_policy`.
pub fn confirmation_policy(app: &App, id: &str, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let e = entry(app, id)?;
    let body: PolicyRequest = req.json()?;
    app.conversations
        .conversation(&e)?
        .set_confirmation_policy(body.policy)?;
    Ok(ApiResponse::success())
}

#[derive(Deserialize)]
struct ConfirmationResponse {
    accept: bool,
    #[serde(default = "default_reason")]
    reason: String,
}

fn default_reason() -> String {
    "User rejected the action.".into()
}

/// `POST /api/conversations/{id}/events/respond_to_confirmation`.
pub fn respond_to_confirmation(
    app: &App,
    id: &str,
    req: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let e = entry(app, id)?;
    let body: ConfirmationResponse = req.json()?;
    if body.accept {
        start_run(app, &e)
    } else {
        app.conversations
            .conversation(&e)?
            .reject_pending(&body.reason)?;
        Ok(ApiResponse::success())
    }
}

#[derive(Deserialize)]
struct SecretsRequest {
    secrets: Map<String, Value>,
}

/// `POST /api/conversations/{id}/secrets`: values are stored sealed (see
/// [`crate::server::secrets`]); the state lists only the names, masked.
pub fn secrets(app: &App, id: &str, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let e = entry(app, id)?;
    let body: SecretsRequest = req.json()?;
    app.conversations.store_secrets(&e, &body.secrets)?;
    let conv = app.conversations.conversation(&e)?;
    conv.update_state(|s| {
        let sources = s
            .secret_registry
            .as_object_mut()
            .and_then(|r| {
                r.entry("secret_sources").or_insert_with(|| json!({}));
                r.get_mut("secret_sources")
            })
            .and_then(Value::as_object_mut);
        if let Some(sources) = sources {
            for name in body.secrets.keys() {
                sources.insert(
                    name.clone(),
                    json!({"kind": "StaticSecret", "value": crate::llm::secret::MASK}),
                );
            }
        }
    })?;
    Ok(ApiResponse::success())
}

/// `GET /api/conversations/{id}/agent_final_response`.
pub fn agent_final_response(app: &App, id: &str) -> Result<ApiResponse, ApiError> {
    let e = entry(app, id)?;
    let conv = app.conversations.conversation(&e)?;
    let response = conv.with_events(|events| {
        events.iter().rev().find_map(|ev| match ev.as_ref() {
            Event::Action(a) => match &a.action {
                Some(crate::wire::Action::Finish(f)) => Some(f.message.clone()),
                _ => None,
            },
            Event::Message(m) if m.meta.source == Source::Agent => {
                Some(m.llm_message.joined_text())
            }
            _ => None,
        })
    });
    Ok(ApiResponse::json(
        &json!({"response": response.unwrap_or_default()}),
    ))
}

/// `POST /api/conversations/{id}/events`: a user message, optionally run.
pub fn send_message(app: &App, id: &str, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let e = entry(app, id)?;
    let body: SendMessageRequest = req.json()?;
    if body.role != Role::User {
        return Err(ApiError::Unprocessable(
            "only user messages can be sent".into(),
        ));
    }
    let message = Message {
        content: body
            .content
            .into_iter()
            .filter(|c| !matches!(c, Content::Text(t) if t.text.is_empty()))
            .collect(),
        ..Message::text(Role::User, "")
    };
    app.conversations.send_message(&e, message, body.run)?;
    Ok(ApiResponse::success())
}

/// Filters of `events/search` and `events/count`.
struct EventFilter {
    kind: Option<String>,
    source: Option<String>,
    body: Option<String>,
    gte: Option<String>,
    lt: Option<String>,
}

impl EventFilter {
    fn from(req: &ApiRequest) -> Self {
        EventFilter {
            kind: req.query("kind").map(String::from),
            source: req.query("source").map(String::from),
            body: req.query("body").map(str::to_lowercase),
            gte: req
                .query("timestamp__gte")
                .map(|t| t.trim_end_matches('Z').to_string()),
            lt: req
                .query("timestamp__lt")
                .map(|t| t.trim_end_matches('Z').to_string()),
        }
    }

    fn matches(&self, e: &Event) -> bool {
        if self.kind.as_deref().is_some_and(|k| e.kind() != k) {
            return false;
        }
        if let Some(src) = &self.source {
            let s = e
                .meta()
                .map(|m| serde_json::to_value(m.source).unwrap_or_default());
            if s.as_ref().and_then(Value::as_str) != Some(src.as_str()) {
                return false;
            }
        }
        let ts = e.timestamp();
        if self.gte.as_deref().is_some_and(|g| ts < g)
            || self.lt.as_deref().is_some_and(|l| ts >= l)
        {
            return false;
        }
        if let Some(needle) = &self.body {
            let text = serde_json::to_string(e).unwrap_or_default().to_lowercase();
            if !text.contains(needle.as_str()) {
                return false;
            }
        }
        true
    }
}

/// `GET /api/conversations/{id}/events/search`.
pub fn search_events(app: &App, id: &str, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let e = entry(app, id)?;
    let limit = req.int_query("limit", 1, 100)?.unwrap_or(100) as usize;
    let descending = req.timestamp_descending()?;
    let filter = EventFilter::from(req);
    let conv = app.conversations.conversation(&e)?;
    let page_id = req.query("page_id");
    let body = conv.with_events(|events| {
        let mut matching: Vec<&Arc<Event>> = events.iter().filter(|e| filter.matches(e)).collect();
        if descending {
            matching.reverse();
        }
        // An unknown page id starts from the beginning, as in the reference.
        let start = page_id
            .and_then(|p| matching.iter().position(|e| e.id() == p))
            .unwrap_or(0);
        let rest = &matching[start..];
        let page = Page {
            items: rest
                .iter()
                .take(limit)
                .map(|e| e.as_ref())
                .collect::<Vec<_>>(),
            next_page_id: rest.get(limit).map(|e| e.id().to_string()),
        };
        serde_json::to_vec(&page)
    });
    let body = body.map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(ApiResponse::bytes("application/json", body))
}

/// `GET /api/conversations/{id}/events/count`.
pub fn count_events(app: &App, id: &str, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let e = entry(app, id)?;
    let filter = EventFilter::from(req);
    let n = app
        .conversations
        .conversation(&e)?
        .with_events(|events| events.iter().filter(|e| filter.matches(e)).count());
    Ok(ApiResponse::json(&n))
}

/// `GET /api/conversations/{id}/events/{event_id}`.
pub fn get_event(app: &App, id: &str, event_id: &str) -> Result<ApiResponse, ApiError> {
    let e = entry(app, id)?;
    let found = app
        .conversations
        .conversation(&e)?
        .with_events(|events| events.iter().find(|ev| ev.id() == event_id).cloned());
    match found {
        Some(ev) => Ok(ApiResponse::json(ev.as_ref())),
        None => Err(ApiError::not_found()),
    }
}

/// `GET /api/conversations/{id}/events` with a JSON list of ids.
pub fn batch_events(app: &App, id: &str, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let e = entry(app, id)?;
    let ids: Vec<String> = req.json()?;
    let conv = app.conversations.conversation(&e)?;
    let out: Vec<Value> = conv.with_events(|events| {
        ids.iter()
            .map(|id| {
                events
                    .iter()
                    .find(|ev| ev.id() == id)
                    .and_then(|ev| serde_json::to_value(ev.as_ref()).ok())
                    .unwrap_or(Value::Null)
            })
            .collect()
    });
    Ok(ApiResponse::json(&out))
}
