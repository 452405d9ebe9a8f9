//! `/api/file/...`: upload, download, create directories.
//!
//! Paths must be absolute, as in the reference. They are checked before any
//! I/O: no NUL bytes, and when the server has a `file_root` the path (after
//! resolving `..` and every symlink of its existing part) must stay inside it.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::server::http::{ApiError, ApiRequest, ApiResponse};
use crate::server::multipart;
use crate::server::App;
use crate::wire::FileUploadResult;

/// Checks a user-supplied path and returns the one to use.
pub fn checked_path(app: &App, raw: &str) -> Result<PathBuf, ApiError> {
    if raw.contains('\0') {
        return Err(ApiError::BadRequest(
            "Path must not contain NUL bytes".into(),
        ));
    }
    let path = Path::new(raw);
    if !path.is_absolute() {
        return Err(ApiError::BadRequest("Path must be absolute".into()));
    }
    let Some(root) = &app.config.file_root else {
        return Ok(path.to_path_buf());
    };
    let outside = || ApiError::Forbidden("Path is outside the allowed root".into());
    let root = root.canonicalize().map_err(|_| outside())?;
    let resolved = resolve_existing_prefix(path).ok_or_else(outside)?;
    if resolved.starts_with(&root) {
        Ok(resolved)
    } else {
        Err(outside())
    }
}

/// Resolves the longest existing prefix of `path` through the file system
/// (following symlinks) and appends the rest. A missing component followed by
/// `..` cannot be resolved safely, so such paths give `None`.
fn resolve_existing_prefix(path: &Path) -> Option<PathBuf> {
    let mut existing = path.to_path_buf();
    let mut rest = Vec::new();
    loop {
        match existing.canonicalize() {
            Ok(real) => {
                let mut out = real;
                for part in rest.iter().rev() {
                    out.push(part);
                }
                return Some(out);
            }
            Err(_) => {
                let name = existing.file_name()?.to_os_string();
                rest.push(name);
                existing = existing.parent()?.to_path_buf();
            }
        }
    }
}

/// `POST /api/file/upload?path=...` with a multipart part `file`.
pub fn upload(app: &App, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let target = checked_path(app, req.required_query("path")?)?;
    let boundary = req
        .header("content-type")
        .and_then(multipart::boundary)
        .ok_or_else(missing_file_field)?;
    let parts = multipart::parse(&req.body, &boundary)
        .ok_or_else(|| ApiError::BadRequest("There was an error parsing the body".into()))?;
    let part = parts
        .iter()
        .find(|p| p.name == "file")
        .ok_or_else(missing_file_field)?;
    if target.is_dir() {
        return Err(ApiError::BadRequest("Path is a directory".into()));
    }
    if let Some(parent) = target.parent() {
        if let Err(e) = fs::create_dir_all(parent) {
            return Err(match e.kind() {
                ErrorKind::AlreadyExists | ErrorKind::NotADirectory => {
                    ApiError::BadRequest("A parent of the path is not a directory".into())
                }
                ErrorKind::PermissionDenied => {
                    ApiError::Forbidden(format!("Permission denied: {e}"))
                }
                _ => ApiError::internal(format!("Failed to upload file: {e}")),
            });
        }
    }
    fs::write(&target, part.data).map_err(|e| match e.kind() {
        ErrorKind::IsADirectory => ApiError::BadRequest("Path is a directory".into()),
        ErrorKind::NotADirectory => {
            ApiError::BadRequest("A parent of the path is not a directory".into())
        }
        ErrorKind::PermissionDenied => ApiError::Forbidden(format!("Permission denied: {e}")),
        _ => ApiError::internal(format!("Failed to upload file: {e}")),
    })?;
    log::info!("uploaded {} bytes to {}", part.data.len(), target.display());
    Ok(ApiResponse::json(&FileUploadResult {
        success: true,
        file_size: part.data.len() as u64,
    }))
}

fn missing_file_field() -> ApiError {
    ApiError::validation(
        "missing",
        &["body", "file"],
        "Field required",
        serde_json::Value::Null,
    )
}

/// `GET /api/file/download?path=...` -> the file's bytes.
pub fn download(app: &App, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let target = checked_path(app, req.required_query("path")?)?;
    if !target.exists() {
        return Err(ApiError::NotFound("File not found".into()));
    }
    if !target.is_file() {
        return Err(ApiError::BadRequest("Path is not a file".into()));
    }
    let data = fs::read(&target).map_err(|e| match e.kind() {
        ErrorKind::PermissionDenied => ApiError::Forbidden(format!("Permission denied: {e}")),
        _ => ApiError::internal(format!("Failed to download file: {e}")),
    })?;
    let name: String = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_graphic() && *c != '"' && *c != '\\')
        .collect();
    let mut response = ApiResponse::bytes("application/octet-stream", data);
    response.headers.push((
        "Content-Disposition".into(),
        format!("attachment; filename=\"{name}\""),
    ));
    Ok(response)
}

/// `POST /api/file/create_directory?path=...`.
pub fn create_directory(app: &App, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let target = checked_path(app, req.required_query("path")?)?;
    fs::create_dir_all(&target).map_err(|e| match e.kind() {
        ErrorKind::AlreadyExists | ErrorKind::NotADirectory => {
            ApiError::BadRequest("Path exists and is not a directory".into())
        }
        ErrorKind::PermissionDenied => ApiError::Forbidden(format!("Permission denied: {e}")),
        _ => ApiError::internal(format!("Failed to create directory: {e}")),
    })?;
    Ok(ApiResponse::success())
}
