//! The server as a whole: auth, path checks, the binary's CLI and
//! graceful shutdown.

mod common;

use std::net::TcpStream;
use std::time::Duration;

use common::binary::BinaryServer;
use common::{
    create_scripted_conversation, get_json, message, post_json, raw_agent, ws_connect, ws_next,
    TempDir, TestServer,
};
use serde_json::{json, Value};

fn status_of(agent: &ureq::Agent, method: &str, url: &str, key: Option<&str>) -> u16 {
    let r = match method {
        "GET" => {
            let mut b = agent.get(url);
            if let Some(k) = key {
                b = b.header("X-Session-API-Key", k);
            }
            b.call()
        }
        _ => {
            let mut b = agent.post(url);
            if let Some(k) = key {
                b = b.header("X-Session-API-Key", k);
            }
            b.send_json(json!({"command": "true"}))
        }
    };
    r.unwrap().status().as_u16()
}

#[test]
fn session_key_guards_api_routes_only() {
    let server = TestServer::with_keys(&["s3cret-key"]);
    let agent = raw_agent();
    for open in ["/health", "/alive", "/ready", "/server_info"] {
        assert_eq!(
            status_of(&agent, "GET", &format!("{}{open}", server.url), None),
            200,
            "{open}"
        );
    }
    let routes = [
        ("POST", "/api/bash/start_bash_command"),
        ("POST", "/api/bash/execute_bash_command"),
        ("GET", "/api/bash/bash_events/search"),
        ("GET", "/api/file/download?path=/etc/hostname"),
        ("POST", "/api/file/upload?path=/tmp/x"),
        ("POST", "/api/file/create_directory?path=/tmp/x"),
        ("GET", "/api/git/changes?path=/tmp"),
        ("GET", "/api/git/diff?path=/tmp/x"),
        (
            "GET",
            "/api/bash/bash_events/0123456789abcdef0123456789abcdef",
        ),
        (
            "POST",
            "/api/bash/bash_commands/0123456789abcdef0123456789abcdef/stop",
        ),
    ];
    for (method, path) in routes {
        let url = format!("{}{path}", server.url);
        assert_eq!(
            status_of(&agent, method, &url, None),
            401,
            "{method} {path} without key"
        );
        assert_eq!(
            status_of(&agent, method, &url, Some("wrong")),
            401,
            "{method} {path} wrong key"
        );
        assert_ne!(
            status_of(&agent, method, &url, Some("s3cret-key")),
            401,
            "{method} {path} with key"
        );
    }
    let (_, body) = get_json(&format!("{}/api/bash/bash_events/search", server.url));
    assert_eq!(body, json!({"detail": "Unauthorized"}));
    let ws = openhands_sync::client::RemoteWorkspace::builder(&server.url)
        .session_key("s3cret-key")
        .build();
    assert_eq!(ws.execute_command("echo ok").unwrap().stdout, "ok\n");
}

#[test]
fn file_root_confines_every_file_route() {
    let root = TempDir::new("root");
    let outside = TempDir::new("outside");
    std::fs::write(outside.path().join("secret.txt"), "top secret").unwrap();
    std::os::unix::fs::symlink(outside.path(), root.path().join("link")).unwrap();
    std::fs::create_dir(root.path().join("sub")).unwrap();
    let root_path = root.path().to_path_buf();
    let server = TestServer::with(move |c| c.file_root = Some(root_path));
    let ws = openhands_sync::client::RemoteWorkspace::new(&server.url);
    let r = root.path().to_str().unwrap();
    let o = outside.path().to_str().unwrap();
    let attempts = [
        format!("{o}/secret.txt"),
        format!(
            "{r}/../{}/secret.txt",
            outside.path().file_name().unwrap().to_str().unwrap()
        ),
        format!(
            "{r}/sub/../../{}/secret.txt",
            outside.path().file_name().unwrap().to_str().unwrap()
        ),
        format!("{r}/link/secret.txt"),
        format!("{r}/link/new.txt"),
        format!("{r}/nosuch/../../x.txt"),
        "/etc/passwd".to_string(),
        format!("{r}/sub/\0x"),
        "relative.txt".to_string(),
    ];
    for path in &attempts {
        let down = ws.file_download_bytes(path).unwrap_err();
        assert!(
            matches!(down.status(), Some(400 | 403 | 404)),
            "download {path:?}: {down}"
        );
        assert_ne!(
            down.status(),
            Some(404),
            "download {path:?} reached the file system"
        );
        let up = ws.file_upload_bytes(b"pwned", path).unwrap_err();
        assert!(
            matches!(up.status(), Some(400 | 403)),
            "upload {path:?}: {up}"
        );
    }
    let names: Vec<_> = std::fs::read_dir(outside.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        ["secret.txt"],
        "something was written outside the root"
    );
    // Inside the root everything works.
    let inside = format!("{r}/sub/ok.txt");
    ws.file_upload_bytes(b"fine", &inside).unwrap();
    assert_eq!(ws.file_download_bytes(&inside).unwrap(), b"fine");
    assert_eq!(
        ws.file_download_bytes(&format!("{r}/sub/../sub/ok.txt"))
            .unwrap(),
        b"fine"
    );
}

/// Starts the binary on a free port; returns the child and its URL.
#[test]
fn sigterm_during_a_run_answers_in_flight_requests_flushes_events_and_exits_0() {
    let dir = TempDir::new("bin");
    let work = TempDir::new("bin-work");
    let mut server = BinaryServer::spawn(dir.path(), &[("LOG_JSON", "true")]);
    let url = server.url.clone();
    let ws = openhands_sync::client::RemoteWorkspace::new(&url);
    let r = ws.execute_command("pwd").unwrap();
    assert_eq!(r.stdout.trim(), dir.path().to_str().unwrap());
    // A workspace command and a conversation whose terminal runs a command.
    let marker = format!("ohs_sigterm_{}", std::process::id());
    let sleeper = common::named_sleep(work.path(), &format!("{marker}_ws"));
    ws.start_command(
        &format!("'{}' 300; true", sleeper.display()),
        &Default::default(),
    )
    .unwrap();
    let id = create_scripted_conversation(&url, work.path(), json!({}));
    let mut socket = ws_connect(&url, &format!("/sockets/events/{id}"));
    assert!(ws_next(&mut socket).is_some());
    let (status, _) = post_json(
        &format!("{url}/api/conversations/{id}/events"),
        message(&format!("echo go; exec -a {marker}_term sleep 300"), true),
    );
    assert_eq!(status, 200);
    let mut acknowledged = Vec::new();
    loop {
        let e = ws_next(&mut socket).expect("events of the run");
        if e["key"] != "full_state" {
            acknowledged.push(e["id"].as_str().unwrap().to_string());
        }
        if e["kind"] == "ActionEvent" {
            break;
        }
    }
    assert!(
        !common::processes_matching(&marker).is_empty(),
        "commands started"
    );
    // A request in flight when the signal arrives is still answered.
    let slow = {
        let url = url.clone();
        std::thread::spawn(move || {
            raw_agent()
                .post(format!("{url}/api/bash/execute_bash_command"))
                .send_json(json!({"command": "sleep 1; echo done", "timeout": 10}))
                .map(|mut r| r.body_mut().read_to_string().unwrap_or_default())
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let status = server
        .terminate(Duration::from_secs(15))
        .expect("the server exits after SIGTERM");
    let body = slow.join().unwrap().unwrap();
    assert!(body.contains("done"), "in-flight request lost: {body}");
    assert!(status.success(), "exit status {status:?}");
    std::thread::sleep(Duration::from_millis(200));
    let left = common::processes_matching(&marker);
    assert!(left.is_empty(), "commands outlived the server: {left}");
    assert!(TcpStream::connect(url.trim_start_matches("http://")).is_err());
    for line in server.log().lines() {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not a JSON log line: {line}"));
        assert!(v["message"].is_string() && v["level"].is_string());
    }
    // Every event the socket saw was flushed to disk before the exit.
    let again = BinaryServer::spawn(dir.path(), &[]);
    let stored = common::stored_ids(&again.url, &id);
    for a in &acknowledged {
        assert!(stored.contains(a), "event {a} lost in the shutdown");
    }
    let (_, info) = get_json(&format!("{}/api/conversations/{id}", again.url));
    assert_ne!(info["execution_status"], "running");
}
