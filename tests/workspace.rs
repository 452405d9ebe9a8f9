//! The workspace routes driven through the public `RemoteWorkspace` client.

mod common;

use std::time::{Duration, Instant};

use common::{raw_agent, TempDir, TestServer};
use openhands_sync::client::{CommandOptions, RemoteWorkspace};
use openhands_sync::wire::{BashEvent, GitChangeStatus, Page};

#[test]
fn pwd_runs_in_the_server_directory() {
    let server = TestServer::start();
    let ws = RemoteWorkspace::new(&server.url);
    assert!(ws.alive());
    let result = ws.execute_command("pwd").unwrap();
    assert_eq!(result.exit_code, 0);
    assert_eq!(result.command, "pwd");
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(result.stdout.trim(), cwd.to_str().unwrap());
    assert!(!result.timeout_occurred);
}

#[test]
fn exit_codes_stderr_and_cwd_are_kept() {
    let server = TestServer::start();
    let dir = TempDir::new("cwd");
    let ws = RemoteWorkspace::new(&server.url);
    let r = ws
        .execute_command("echo out; echo err >&2; exit 3")
        .unwrap();
    assert_eq!(
        (r.exit_code, r.stdout.as_str(), r.stderr.as_str()),
        (3, "out\n", "err\n")
    );
    let opts = CommandOptions {
        cwd: Some(dir.path().to_string_lossy().into_owned()),
        timeout: None,
    };
    let r = ws.execute_command_with("pwd", &opts).unwrap();
    assert_eq!(r.stdout.trim(), dir.path().to_str().unwrap());
    let missing = CommandOptions {
        cwd: Some("/definitely/not/here".into()),
        timeout: None,
    };
    let err = ws.execute_command_with("pwd", &missing).unwrap_err();
    assert_eq!(err.status(), Some(400), "{err}");
}

#[test]
fn timeout_kills_the_whole_process_group() {
    let server = TestServer::start();
    let ws = RemoteWorkspace::new(&server.url);
    let marker = format!("ohs_timeout_{}", std::process::id());
    let opts = CommandOptions {
        cwd: None,
        timeout: Some(Duration::from_secs(1)),
    };
    let started = Instant::now();
    // A child of the shell that would outlive a kill of the shell alone.
    let r = ws
        .execute_command_with(
            &format!("bash -c 'exec -a {marker} sleep 100' & wait"),
            &opts,
        )
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(r.exit_code, -1);
    assert!(r.timeout_occurred, "{r:?}");
    std::thread::sleep(Duration::from_millis(300));
    let ps = common::processes_matching(&marker);
    assert!(ps.is_empty(), "a timed-out command survived: {:?}", ps);
}

#[test]
fn long_output_streams_as_ordered_chunks() {
    let server = TestServer::start();
    let ws = RemoteWorkspace::new(&server.url);
    let cmd = ws
        .start_command(
            "echo first; sleep 0.6; echo second; exit 7",
            &CommandOptions::default(),
        )
        .unwrap();
    let url = format!("{}/api/bash/bash_events/search", server.url);
    let deadline = Instant::now() + Duration::from_secs(10);
    let outputs = loop {
        let page: Page<BashEvent> = raw_agent()
            .get(&url)
            .query("kind__eq", "BashOutput")
            .query("command_id__eq", &cmd.id)
            .call()
            .unwrap()
            .body_mut()
            .read_json()
            .unwrap();
        let outs: Vec<_> = page
            .items
            .into_iter()
            .filter_map(|e| match e {
                BashEvent::Output(o) => Some(o),
                _ => None,
            })
            .collect();
        if outs.iter().any(|o| o.exit_code.is_some()) || Instant::now() > deadline {
            break outs;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        outputs.len() >= 2,
        "expected a chunk before the end: {outputs:?}"
    );
    assert_eq!(outputs[0].stdout.as_deref(), Some("first\n"));
    assert_eq!(outputs[0].exit_code, None);
    let orders: Vec<u64> = outputs.iter().map(|o| o.order).collect();
    assert_eq!(orders, (0..outputs.len() as u64).collect::<Vec<_>>());
    let last = outputs.last().unwrap();
    assert_eq!(last.exit_code, Some(7));
    let all: String = outputs.iter().filter_map(|o| o.stdout.clone()).collect();
    assert_eq!(all, "first\nsecond\n");
}

#[test]
fn stop_ends_a_running_command() {
    let server = TestServer::start();
    let ws = RemoteWorkspace::new(&server.url);
    let cmd = ws
        .start_command("sleep 60", &CommandOptions::default())
        .unwrap();
    let agent = raw_agent();
    let stop = |id: &str| {
        agent
            .post(format!("{}/api/bash/bash_commands/{id}/stop", server.url))
            .send_empty()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(stop(&cmd.id), 200);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let page: Page<BashEvent> = agent
            .get(format!("{}/api/bash/bash_events/search", server.url))
            .query("command_id__eq", &cmd.id)
            .call()
            .unwrap()
            .body_mut()
            .read_json()
            .unwrap();
        if page
            .items
            .iter()
            .any(|e| matches!(e, BashEvent::Output(o) if o.exit_code == Some(-1)))
        {
            break;
        }
        assert!(Instant::now() < deadline, "stop did not end the command");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(stop(&cmd.id), 200, "stopping a finished command is fine");
    assert_eq!(stop(&openhands_sync::util::id::uuid4_hex()), 404);
    assert_eq!(stop("not-a-uuid"), 422);
}

#[test]
fn execute_bash_command_answers_when_done() {
    let server = TestServer::start();
    let body: serde_json::Value = raw_agent()
        .post(format!("{}/api/bash/execute_bash_command", server.url))
        .send_json(serde_json::json!({"command": "printf 'a\\nb'; exit 2", "timeout": 10}))
        .unwrap()
        .body_mut()
        .read_json()
        .unwrap();
    assert_eq!(body["kind"], "BashOutput");
    assert_eq!(body["exit_code"], 2);
    assert_eq!(body["stdout"], "a\nb");
    assert_eq!(body["stderr"], serde_json::Value::Null);
}

#[test]
fn file_upload_download_round_trip() {
    let server = TestServer::start();
    let dir = TempDir::new("files");
    let ws = RemoteWorkspace::new(&server.url);
    let data: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
    let remote = dir.path().join("nested/deeper/blob.bin");
    let remote = remote.to_str().unwrap();
    let up = ws.file_upload_bytes(&data, remote).unwrap();
    assert!(up.success);
    assert_eq!(up.file_size, data.len() as u64);
    assert_eq!(ws.file_download_bytes(remote).unwrap(), data);

    let local = dir.path().join("local/copy.bin");
    assert_eq!(ws.file_download(remote, &local).unwrap(), data.len() as u64);
    assert_eq!(std::fs::read(&local).unwrap(), data);
    let again = ws.file_upload(&local, &format!("{remote}.2")).unwrap();
    assert_eq!(again.file_size, data.len() as u64);

    let missing = ws
        .file_download_bytes(&format!("{remote}.missing"))
        .unwrap_err();
    assert_eq!(missing.status(), Some(404));
    let relative = ws.file_download_bytes("relative/path").unwrap_err();
    assert_eq!(relative.status(), Some(400));
    assert!(relative.to_string().contains("Path must be absolute"));
    let is_dir = ws
        .file_download_bytes(dir.path().to_str().unwrap())
        .unwrap_err();
    assert_eq!(is_dir.status(), Some(400));
}

#[test]
fn create_directory_is_idempotent_and_refuses_files() {
    let server = TestServer::start();
    let dir = TempDir::new("mkdir");
    let agent = raw_agent();
    let url = format!("{}/api/file/create_directory", server.url);
    let target = dir.path().join("a/b/c");
    for _ in 0..2 {
        let r = agent
            .post(&url)
            .query("path", target.to_str().unwrap())
            .send_empty()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    assert!(target.is_dir());
    std::fs::write(dir.path().join("file"), "x").unwrap();
    let r = agent
        .post(&url)
        .query("path", dir.path().join("file").to_str().unwrap())
        .send_empty()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let r = agent.post(&url).send_empty().unwrap();
    assert_eq!(r.status().as_u16(), 422, "path is required");
}

#[test]
fn git_changes_and_diff() {
    let server = TestServer::start();
    let repo = TempDir::new("git");
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(["-c", "user.email=t@example.invalid", "-c", "user.name=t"])
            .args(args)
            .current_dir(repo.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    git(&["init", "-q"]);
    std::fs::write(repo.path().join("kept.txt"), "one\ntwo\n").unwrap();
    std::fs::write(repo.path().join("gone.txt"), "bye\n").unwrap();
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "init"]);
    std::fs::write(repo.path().join("kept.txt"), "one\nTWO\n").unwrap();
    std::fs::remove_file(repo.path().join("gone.txt")).unwrap();
    std::fs::write(repo.path().join("new.txt"), "hi\n").unwrap();

    let ws = RemoteWorkspace::new(&server.url);
    let mut changes = ws.git_changes(repo.path().to_str().unwrap()).unwrap();
    changes.sort_by(|a, b| a.path.cmp(&b.path));
    let got: Vec<(GitChangeStatus, &str)> = changes
        .iter()
        .map(|c| (c.status, c.path.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (GitChangeStatus::Deleted, "gone.txt"),
            (GitChangeStatus::Updated, "kept.txt"),
            (GitChangeStatus::Added, "new.txt")
        ]
    );
    let diff = ws
        .git_diff(repo.path().join("kept.txt").to_str().unwrap())
        .unwrap();
    assert_eq!(diff.original.as_deref(), Some("one\ntwo"));
    assert_eq!(diff.modified.as_deref(), Some("one\nTWO"));

    let plain = TempDir::new("nogit");
    assert!(ws
        .git_changes(plain.path().to_str().unwrap())
        .unwrap()
        .is_empty());
}

/// Every page of `GET /api/bash/bash_events/search?{query}`, as event ids.
fn all_pages(url: &str, query: &str) -> Vec<BashEvent> {
    let mut out = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let page_id = next.map(|p| format!("&page_id={p}")).unwrap_or_default();
        let page: Page<BashEvent> = raw_agent()
            .get(format!(
                "{url}/api/bash/bash_events/search?limit=7&{query}{page_id}"
            ))
            .call()
            .unwrap()
            .body_mut()
            .read_json()
            .unwrap();
        out.extend(page.items);
        match page.next_page_id {
            Some(p) => next = Some(p),
            None => return out,
        }
    }
}

#[test]
fn bash_event_search_pages_filters_and_survives_a_restart() {
    let state = TempDir::new("bash-search");
    let dir = state.path().to_path_buf();
    let server = TestServer::with(move |c| c.state_dir = dir);
    let ws = RemoteWorkspace::new(&server.url);
    for i in 0..30 {
        assert_eq!(
            ws.execute_command(&format!("echo {i}")).unwrap().exit_code,
            0
        );
    }
    let check = |url: &str| {
        let up = all_pages(url, "");
        assert_eq!(up.len(), 60, "30 commands and 30 outputs, each once");
        let stamps: Vec<&str> = up.iter().map(|e| e.timestamp()).collect();
        let mut sorted = stamps.clone();
        sorted.sort();
        assert_eq!(stamps, sorted, "ascending by time");
        let mut down = all_pages(url, "sort_order=TIMESTAMP_DESC");
        down.reverse();
        let ids = |v: &[BashEvent]| v.iter().map(|e| e.id().to_string()).collect::<Vec<_>>();
        assert_eq!(ids(&down), ids(&up), "descending is the reverse");
        let commands = all_pages(url, "kind__eq=BashCommand");
        assert_eq!(commands.len(), 30);
        let BashEvent::Command(c) = &commands[7] else {
            panic!("not a command: {:?}", commands[7]);
        };
        let outputs = all_pages(url, &format!("command_id__eq={}", c.id));
        match outputs.as_slice() {
            [BashEvent::Output(o)] => assert_eq!(o.stdout.as_deref(), Some("7\n")),
            other => panic!("outputs of command 7: {other:?}"),
        }
    };
    check(&server.url);
    drop(server);
    // A new server on the same directory reads the same history from disk.
    let dir = state.path().to_path_buf();
    let again = TestServer::with(move |c| c.state_dir = dir);
    check(&again.url);
}
