//! `/api/bash/...`: start, run, stop and search workspace commands.

use serde_json::{json, Value};

use crate::bash::BashSearch;
use crate::server::http::{ApiError, ApiRequest, ApiResponse};
use crate::server::App;
use crate::util::id::normalize_uuid;
use crate::wire::{BashEvent, ExecuteBashRequest, Page};

/// `POST /api/bash/start_bash_command` -> `BashCommand`.
pub fn start(app: &App, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let request: ExecuteBashRequest = req.json()?;
    let command = app.bash.start(request)?;
    Ok(ApiResponse::json(&BashEvent::Command(command)))
}

/// `POST /api/bash/execute_bash_command` -> one `BashOutput` with everything.
pub fn execute(app: &App, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let request: ExecuteBashRequest = req.json()?;
    let output = app.bash.execute(request)?;
    Ok(ApiResponse::json(&BashEvent::Output(output)))
}

/// `POST /api/bash/bash_commands/{id}/stop`.
pub fn stop(app: &App, id: &str) -> Result<ApiResponse, ApiError> {
    let id = uuid_param(id, "command_id")?;
    if app.bash.stop(&id) {
        Ok(ApiResponse::success())
    } else {
        Err(ApiError::not_found())
    }
}

/// `GET /api/bash/bash_events/{id}`.
pub fn get(app: &App, id: &str) -> Result<ApiResponse, ApiError> {
    let id = uuid_param(id, "event_id")?;
    match app.bash.get(&id) {
        Some(event) => Ok(ApiResponse::json(event.as_ref())),
        None => Err(ApiError::not_found()),
    }
}

/// `GET /api/bash/bash_events/` with a JSON list of ids -> events or nulls.
pub fn batch_get(app: &App, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let ids: Vec<String> = req.json()?;
    let events: Vec<Value> = ids
        .iter()
        .map(|id| {
            normalize_uuid(id)
                .and_then(|id| app.bash.get(&id))
                .and_then(|e| serde_json::to_value(e.as_ref()).ok())
                .unwrap_or(Value::Null)
        })
        .collect();
    Ok(ApiResponse::json(&events))
}

/// `GET /api/bash/bash_events/search`.
pub fn search(app: &App, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let descending = req.timestamp_descending()?;
    let command_id = match req.query("command_id__eq") {
        Some(raw) => Some(uuid_query(raw, "command_id__eq")?),
        None => None,
    };
    let order_gt = req
        .int_query("order__gt", i64::MIN, i64::MAX)?
        .map(|n| n.max(-1));
    let query = BashSearch {
        kind: req.query("kind__eq").map(str::to_string),
        command_id,
        order_gt: order_gt.and_then(|n| u64::try_from(n).ok()),
        timestamp_gte: timestamp_query(req, "timestamp__gte")?,
        timestamp_lt: timestamp_query(req, "timestamp__lt")?,
        descending,
        page_id: req.query("page_id").map(str::to_string),
        limit: req.int_query("limit", 1, 100)?.unwrap_or(100) as usize,
    };
    // order__gt=-1 means "everything": every order is > -1.
    let query = BashSearch {
        order_gt: if order_gt == Some(-1) {
            None
        } else {
            query.order_gt
        },
        ..query
    };
    let (items, next_page_id) = app.bash.search(&query);
    let page = Page {
        items: items.iter().map(|e| e.as_ref()).collect::<Vec<_>>(),
        next_page_id,
    };
    Ok(ApiResponse::json(&page))
}

/// Accepts an ISO-8601 time and turns it into the sortable 20-digit key.
fn timestamp_query(req: &ApiRequest, name: &str) -> Result<Option<String>, ApiError> {
    let Some(raw) = req.query(name) else {
        return Ok(None);
    };
    let digits = crate::util::time::compact_key(raw);
    let plausible = raw.len() >= 10 && raw.as_bytes().get(4) == Some(&b'-') && digits.len() >= 8;
    if !plausible {
        return Err(ApiError::validation(
            "datetime_from_date_parsing",
            &["query", name],
            "Input should be a valid datetime or date",
            json!(raw),
        ));
    }
    Ok(Some(format!("{digits:0<20}")))
}

fn uuid_query(raw: &str, name: &str) -> Result<String, ApiError> {
    normalize_uuid(raw).ok_or_else(|| {
        ApiError::validation(
            "uuid_parsing",
            &["query", name],
            "Input should be a valid UUID",
            json!(raw),
        )
    })
}

/// Parses a UUID path parameter, 422 like FastAPI otherwise.
pub fn uuid_param(raw: &str, name: &str) -> Result<String, ApiError> {
    normalize_uuid(raw).ok_or_else(|| {
        ApiError::validation(
            "uuid_parsing",
            &["path", name],
            "Input should be a valid UUID",
            json!(raw),
        )
    })
}
