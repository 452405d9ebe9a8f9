//! `/health`, `/alive`, `/ready`, `/server_info` (and `/`): open to everyone.

use serde_json::json;

use crate::server::http::ApiResponse;
use crate::server::App;

/// `{"status": "ok"}`.
pub fn health() -> ApiResponse {
    ApiResponse::json(&crate::wire::HealthStatus {
        status: "ok".into(),
    })
}

/// `{"status": "ready"}` once the server serves requests.
pub fn ready() -> ApiResponse {
    ApiResponse::json(&json!({ "status": "ready" }))
}

/// The reference's `ServerInfo`, with our version.
pub fn server_info(app: &App) -> ApiResponse {
    let uptime = app.started.elapsed().as_secs_f64();
    ApiResponse::json(&json!({
        "uptime": uptime,
        "idle_time": app.idle_seconds(),
        "title": "OpenHands Agent Server (openhands-sync)",
        "version": env!("CARGO_PKG_VERSION"),
        "sdk_version": env!("CARGO_PKG_VERSION"),
        "tools_version": env!("CARGO_PKG_VERSION"),
        "workspace_version": env!("CARGO_PKG_VERSION"),
        "build_git_sha": "unknown",
        "build_git_ref": "unknown",
        "python_version": "none (Rust)",
        "usable_tools": ["terminal", "file_editor", "task_tracker", "finish", "think"],
        "runtime_idle_timeout_seconds": null,
        "conversation_runtime": "local",
        "available_conversation_runtimes": ["local"],
        "capabilities": [],
        "app_backend_ingress_url": null,
        "max_foreground_terminal_timeout_seconds": null,
        "docs": "/docs",
        "redoc": "/redoc",
    }))
}
