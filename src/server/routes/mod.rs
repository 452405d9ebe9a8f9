//! Request handlers, one module per resource, and the table that maps
//! `(method, path)` to them.

pub mod bash;
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
    match (method, seg.as_slice()) {
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
