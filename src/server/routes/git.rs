//! `/api/git/changes` and `/api/git/diff`, by running `git` (argument lists,
//! never a shell; refs that could be options are refused).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::server::http::{ApiError, ApiRequest, ApiResponse};
use crate::server::routes::files::checked_path;
use crate::server::App;
use crate::wire::{GitChange, GitChangeStatus, GitDiff};

/// Git's hash of the empty tree: the base of a repository without commits.
const EMPTY_TREE: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
/// Larger files are not diffed, as in the reference.
const MAX_DIFF_FILE_BYTES: u64 = 1024 * 1024;

fn git(dir: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new("git")
        .arg("--no-pager")
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

fn repo_root(dir: &Path) -> Option<PathBuf> {
    git(dir, &["rev-parse", "--show-toplevel"])
        .ok()
        .map(|s| PathBuf::from(s.trim()))
}

/// The ref to compare with: the one asked for, else the upstream branch, else
/// `HEAD`, else the empty tree (no commits yet).
fn base_ref(dir: &Path, requested: Option<&str>) -> Result<String, ApiError> {
    if let Some(r) = requested {
        if r.starts_with('-') || r.contains("..") || r.is_empty() {
            return Err(ApiError::BadRequest(format!("Invalid git ref: {r}")));
        }
        return match git(dir, &["rev-parse", "--verify", &format!("{r}^{{commit}}")]) {
            Ok(sha) => Ok(sha.trim().to_string()),
            Err(_) if r == "HEAD" => Ok(EMPTY_TREE.into()),
            Err(e) => Err(ApiError::internal(format!("unknown git ref {r}: {e}"))),
        };
    }
    for candidate in ["@{upstream}", "HEAD"] {
        if let Ok(sha) = git(
            dir,
            &[
                "rev-parse",
                "--verify",
                "--quiet",
                &format!("{candidate}^{{commit}}"),
            ],
        ) {
            return Ok(sha.trim().to_string());
        }
    }
    Ok(EMPTY_TREE.into())
}

/// `GET /api/git/changes?path=...[&ref=...]` -> changed files under `path`.
pub fn changes(app: &App, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let dir = checked_path(app, req.required_query("path")?)?;
    if !dir.is_dir() || repo_root(&dir).is_none() {
        return Ok(ApiResponse::json(&Vec::<GitChange>::new()));
    }
    let base = base_ref(&dir, req.query("ref"))?;
    let diff = git(&dir, &["diff", "--name-status", "--relative", &base])
        .map_err(|e| ApiError::internal(format!("git diff failed: {e}")))?;
    let mut changes = Vec::new();
    for line in diff.lines() {
        let parts: Vec<&str> = line.split('\t').collect();
        let status = parts.first().copied().unwrap_or("");
        match (status.chars().next(), parts.as_slice()) {
            (Some('R'), [_, old, new]) => {
                changes.push(change(GitChangeStatus::Deleted, old));
                changes.push(change(GitChangeStatus::Added, new));
            }
            (Some('C'), [_, _, new]) => changes.push(change(GitChangeStatus::Added, new)),
            (Some('A'), [_, p]) => changes.push(change(GitChangeStatus::Added, p)),
            (Some('D'), [_, p]) => changes.push(change(GitChangeStatus::Deleted, p)),
            (Some('M' | 'U' | 'T'), [_, p]) => changes.push(change(GitChangeStatus::Updated, p)),
            _ => log::warn!("unexpected git diff line: {line}"),
        }
    }
    if let Ok(untracked) = git(&dir, &["ls-files", "--others", "--exclude-standard"]) {
        for p in untracked.lines().filter(|l| !l.trim().is_empty()) {
            changes.push(change(GitChangeStatus::Added, p));
        }
    }
    Ok(ApiResponse::json(&changes))
}

fn change(status: GitChangeStatus, path: &str) -> GitChange {
    GitChange {
        status,
        path: path.to_string(),
    }
}

/// `GET /api/git/diff?path=FILE[&ref=...]` -> the file now and at the base.
pub fn diff(app: &App, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let file = checked_path(app, req.required_query("path")?)?;
    let Some(parent) = file.parent().filter(|p| p.is_dir()) else {
        return Ok(ApiResponse::json(&GitDiff {
            modified: None,
            original: None,
        }));
    };
    let Some(root) = repo_root(parent) else {
        return Ok(ApiResponse::json(&GitDiff {
            modified: None,
            original: None,
        }));
    };
    let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    if size > MAX_DIFF_FILE_BYTES {
        return Err(ApiError::internal(format!(
            "File too large for git diff: {size} bytes (max: {MAX_DIFF_FILE_BYTES} bytes)"
        )));
    }
    let base = base_ref(&root, req.query("ref"))?;
    let real_root = root.canonicalize().unwrap_or(root.clone());
    let real_file = parent
        .canonicalize()
        .map(|p| p.join(file.file_name().unwrap_or_default()))
        .unwrap_or(file.clone());
    let rel = real_file.strip_prefix(&real_root).map_err(|_| {
        ApiError::internal(format!(
            "File is not within git repository: {}",
            file.display()
        ))
    })?;
    let original = git(
        &root,
        &["show", &format!("{base}:{}", rel.to_string_lossy())],
    )
    .map(|s| s.lines().collect::<Vec<_>>().join("\n"))
    .unwrap_or_default();
    let modified = match std::fs::read(&file) {
        Ok(bytes) => String::from_utf8_lossy(&bytes)
            .lines()
            .collect::<Vec<_>>()
            .join("\n"),
        Err(_) if !original.is_empty() => String::new(),
        Err(_) => {
            return Err(ApiError::internal(format!(
                "File does not exist: {}",
                file.display()
            )))
        }
    };
    Ok(ApiResponse::json(&GitDiff {
        modified: Some(modified),
        original: Some(original),
    }))
}
