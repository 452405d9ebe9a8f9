//! Request handlers, one module per resource, and the table that maps
//! `(method, path)` to them.

pub mod bash;
pub mod conversations;
pub mod files;
pub mod git;
pub mod health;

use super::http::{ApiError, ApiRequest, ApiResponse};
use super::App;

/// Whether a route is open without a session key.
pub fn is_public(segments: &[String]) -> bool {
    !matches!(segments.first().map(String::as_str), Some("api"))
}

/// Dispatches a request to its handler.
pub fn route(app: &App, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let seg: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    let method = req.method.as_str();
    // Workspace routes scoped to a conversation behave like the global ones.
    if let ["api", "conversations", id, scope @ ("bash" | "file" | "git"), rest @ ..] =
        seg.as_slice()
    {
        conversations::get(app, id)?;
        let mut inner: Vec<&str> = vec!["api", scope];
        inner.extend_from_slice(rest);
        return route_workspace(app, req, method, &inner);
    }
    match (method, seg.as_slice()) {
        ("POST", ["api", "conversations"]) => conversations::create(app, req),
        ("GET", ["api", "conversations"]) => conversations::batch(app, req),
        ("GET", ["api", "conversations", "search"]) => conversations::search(app, req),
        ("GET", ["api", "conversations", "count"]) => conversations::count(app, req),
        ("GET", ["api", "conversations", id]) => conversations::get(app, id),
        ("PATCH", ["api", "conversations", id]) => conversations::update(app, id, req),
        ("DELETE", ["api", "conversations", id]) => conversations::delete(app, id),
        ("POST", ["api", "conversations", id, "run"]) => conversations::run(app, id),
        // Without async tasks to cancel, interrupt is a pause (as in the
        // reference's fallback).
        ("POST", ["api", "conversations", id, "pause" | "interrupt"]) => {
            conversations::pause(app, id)
        }
        ("POST", ["api", "conversations", id, "confirmation_policy"]) => {
            conversations::confirmation_policy(app, id, req)
        }
        ("POST", ["api", "conversations", id, "secrets"]) => conversations::secrets(app, id, req),
        ("GET", ["api", "conversations", id, "agent_final_response"]) => {
            conversations::agent_final_response(app, id)
        }
        ("POST", ["api", "conversations", id, "events"]) => {
            conversations::send_message(app, id, req)
        }
        ("GET", ["api", "conversations", id, "events"]) => {
            conversations::batch_events(app, id, req)
        }
        ("GET", ["api", "conversations", id, "events", "search"]) => {
            conversations::search_events(app, id, req)
        }
        ("GET", ["api", "conversations", id, "events", "count"]) => {
            conversations::count_events(app, id, req)
        }
        ("POST", ["api", "conversations", id, "events", "respond_to_confirmation"]) => {
            conversations::respond_to_confirmation(app, id, req)
        }
        ("GET", ["api", "conversations", id, "events", event_id]) => {
            conversations::get_event(app, id, event_id)
        }
        _ => route_workspace(app, req, method, &seg),
    }
}

fn route_workspace(
    app: &App,
    req: &ApiRequest,
    method: &str,
    seg: &[&str],
) -> Result<ApiResponse, ApiError> {
    match (method, seg) {
        ("GET" | "HEAD", ["health"] | ["alive"]) => Ok(health::health()),
        ("GET" | "HEAD", ["ready"]) => Ok(health::ready()),
        ("GET" | "HEAD", ["server_info"] | []) => Ok(health::server_info(app)),

        ("POST", ["api", "bash", "start_bash_command"]) => bash::start(app, req),
        ("POST", ["api", "bash", "execute_bash_command"]) => bash::execute(app, req),
        ("GET", ["api", "bash", "bash_events", "search"]) => bash::search(app, req),
        ("GET", ["api", "bash", "bash_events"]) => bash::batch_get(app, req),
        ("GET", ["api", "bash", "bash_events", id]) => bash::get(app, id),
        ("POST", ["api", "bash", "bash_commands", id, "stop"]) => bash::stop(app, id),

        ("POST", ["api", "file", "upload"]) => files::upload(app, req),
        ("GET", ["api", "file", "download"]) => files::download(app, req),
        ("POST", ["api", "file", "create_directory"]) => files::create_directory(app, req),

        ("GET", ["api", "git", "changes"]) => git::changes(app, req),
        ("GET", ["api", "git", "diff"]) => git::diff(app, req),

        (_, path) if known_path(path) => Err(ApiError::MethodNotAllowed),
        _ => Err(ApiError::not_found()),
    }
}

/// Paths that exist for some method (for 405 instead of 404).
fn known_path(seg: &[&str]) -> bool {
    matches!(
        seg,
        ["health"]
            | ["alive"]
            | ["ready"]
            | ["server_info"]
            | ["api", "bash", "start_bash_command" | "execute_bash_command"]
            | ["api", "bash", "bash_events", ..]
            | ["api", "bash", "bash_commands", _, "stop"]
            | ["api", "file", "upload" | "download" | "create_directory"]
            | ["api", "git", "changes" | "diff"]
            | ["api", "conversations", ..]
    )
}

/// The body limit for a request path: uploads may be larger than JSON.
pub fn body_limit(app: &App, segments: &[String]) -> u64 {
    if segments.last().is_some_and(|s| s == "upload") {
        app.config.max_upload_bytes
    } else {
        app.config.max_body_bytes
    }
}
