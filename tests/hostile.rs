//! Hostile input: at least 10,000 malformed requests (truncated JSON, wrong
//! types, deep nesting, huge strings, invalid UTF-8, bad multipart, oversized
//! bodies, broken HTTP framing, request smuggling, slow senders) all get a
//! 4xx answer in the reference's `{"detail": ...}` shape, none has an effect,
//! and the server keeps serving. Also: the connection cap, chunked bodies.
//!
//! The corpus is generated from a seed (printed) so a failure can be replayed
//! with `OHS_HOSTILE_SEED=<seed> cargo test --test hostile`.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{create_scripted_conversation, get_ok, raw_agent, Lcg, TempDir, TestServer};
use serde_json::{json, Value};

/// What a field of a request body holds.
#[derive(Clone, Copy)]
enum Kind {
    Str,
    Obj,
    Bool,
    List,
}

/// A valid body for a route and the kinds of its fields, so that a mutation
/// can make it invalid for certain.
struct Template {
    route: String,
    body: Value,
    fields: &'static [(&'static str, Kind)],
}

/// A value a field of `kind` never accepts.
fn wrong_value(kind: Kind, rng: &mut Lcg) -> Value {
    if rng.below(8) == 0 {
        // Too deep for any parser limit: spliced in as raw text by the caller.
        return json!({"__deep__": "[".repeat(5_000) + &"]".repeat(5_000)});
    }
    let pick: Vec<Value> = match kind {
        Kind::Str => vec![
            json!(5),
            json!(-1.5),
            json!(true),
            json!([]),
            json!({}),
            json!([[[0]]]),
        ],
        Kind::Obj => vec![
            json!(5),
            json!(-1.5),
            json!(true),
            json!("text"),
            json!([1, "two"]),
        ],
        Kind::Bool => vec![json!("maybe"), json!(-1.5), json!([]), json!({})],
        Kind::List => vec![json!(5), json!(true), json!({"a": 1})],
    };
    pick[rng.below(pick.len())].clone()
}

/// One always-invalid variant of a template's body.
fn mutate(t: &Template, rng: &mut Lcg) -> Vec<u8> {
    let text = serde_json::to_vec(&t.body).unwrap();
    match rng.below(6) {
        // A proper prefix of a JSON object is never valid JSON.
        0 | 1 => text[..rng.below(text.len())].to_vec(),
        2 => {
            let (field, kind) = t.fields[rng.below(t.fields.len())];
            let mut body = t.body.clone();
            let value = wrong_value(kind, rng);
            if let Some(deep) = value.get("__deep__").and_then(Value::as_str) {
                body[field] = json!("@@");
                let s = serde_json::to_string(&body).unwrap();
                return s.replacen("\"@@\"", deep, 1).into_bytes();
            }
            body[field] = value;
            serde_json::to_vec(&body).unwrap()
        }
        3 => {
            // Invalid UTF-8 inside a string value.
            let field = t.fields[rng.below(t.fields.len())].0;
            let mut body = t.body.clone();
            body[field] = json!("@@");
            let s = serde_json::to_vec(&body).unwrap();
            let at = s.windows(2).position(|w| w == b"@@").unwrap();
            let mut out = s[..at].to_vec();
            out.extend_from_slice(&[0xff, 0xfe, 0xc3]);
            out.extend_from_slice(&s[at + 2..]);
            out
        }
        4 => {
            // A huge string where a number or object belongs.
            let mut body = t.body.clone();
            let wrong = if t.body.get("timeout").is_some() {
                "timeout"
            } else {
                "__huge__"
            };
            body[wrong] = json!("9".repeat(20_000 + rng.below(40_000)));
            if wrong == "__huge__" {
                // Unknown fields are ignored, so make the whole body an array.
                return serde_json::to_vec(&json!([body])).unwrap();
            }
            serde_json::to_vec(&body).unwrap()
        }
        _ => {
            // Not an object at all.
            let pick = [
                &b"null"[..],
                b"[]",
                b"\"text\"",
                b"12",
                b"{,}",
                b"{\"a\" 1}",
                b"",
            ];
            pick[rng.below(pick.len())].to_vec()
        }
    }
}

/// The answer must be a 4xx whose body is a JSON object with `detail`.
fn check_shape(what: &str, status: u16, body: &[u8], failures: &mut Vec<String>) {
    let detail = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("detail").cloned());
    if !(400..500).contains(&status) || detail.is_none() {
        failures.push(format!(
            "{what} -> {status} {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        ));
    }
}

/// Sends raw bytes on a fresh connection; returns (status, body) of the
/// first answer, and whether the server then closed the connection.
fn raw_exchange(addr: &str, request: &[u8]) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(request);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    parse_response(&out)
}

fn parse_response(out: &[u8]) -> (u16, Vec<u8>) {
    let text = String::from_utf8_lossy(out);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| out[p + 4..].to_vec())
        .unwrap_or_default();
    (status, body)
}

/// Requests broken at the HTTP level, each on its own connection.
fn framing_corpus(rng: &mut Lcg) -> Vec<Vec<u8>> {
    let long = "a".repeat(17 * 1024 + rng.below(4096));
    let many: String = (0..150).map(|i| format!("X-{i}: v\r\n")).collect();
    let cases: Vec<String> = vec![
        "GET /health\r\n\r\n".into(),
        "GET /health HTTP/9.9\r\n\r\n".into(),
        "GET  /health HTTP/1.1\r\n\r\n".into(),
        "G@T /health HTTP/1.1\r\n\r\n".into(),
        "GET health HTTP/1.1\r\n\r\n".into(),
        "GET /health HTTP/1.1\r\nHost localhost\r\n\r\n".into(),
        "GET /health HTTP/1.1\r\nHost : x\r\n\r\n".into(),
        "GET /health HTTP/1.1\r\nX: a\r\n folded\r\n\r\n".into(),
        "GET /health HTTP/1.1\r\nX: a\u{1}b\r\n\r\n".into(),
        format!("GET /{long} HTTP/1.1\r\n\r\n"),
        format!("GET /health HTTP/1.1\r\nX: {long}\r\n\r\n"),
        format!("GET /health HTTP/1.1\r\n{many}\r\n"),
        "POST /api/bash/execute_bash_command HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /health HTTP/1.1\r\n\r\n".into(),
        "POST /api/bash/execute_bash_command HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!".into(),
        "POST /api/bash/execute_bash_command HTTP/1.1\r\nContent-Length: -5\r\n\r\n".into(),
        "POST /api/bash/execute_bash_command HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n".into(),
        "POST /api/bash/execute_bash_command HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n".into(),
        "POST /api/bash/execute_bash_command HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n".into(),
        "POST /api/bash/execute_bash_command HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n".into(),
        "POST /api/bash/execute_bash_command HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n".into(),
        "POST /api/bash/execute_bash_command HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n".into(),
        "POST /api/bash/execute_bash_command HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n".into(),
        "POST /api/bash/execute_bash_command HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n20000\r\n".into(),
        "POST /api/bash/execute_bash_command HTTP/1.1\r\nContent-Length: 200000\r\n\r\n{".into(),
        "POST /api/bash/execute_bash_command HTTP/1.1\r\nContent-Length: 1\r\n\r\n{".into(),
        "POST /api/bash/execute_bash_command HTTP/1.1\r\nContent-Length: 4\r\n\r\n\u{0}\u{0}\u{0}\u{0}".into(),
        "GET /api/nope HTTP/1.1\r\n\r\n".into(),
        "BREW /health HTTP/1.1\r\n\r\n".into(),
        "GET /api/bash/bash_events/%00 HTTP/1.1\r\n\r\n".into(),
        "GET /api/file/download?path=%2Fetc%2F..%2F..%00 HTTP/1.1\r\n\r\n".into(),
    ];
    let mut out: Vec<Vec<u8>> = cases.into_iter().map(String::into_bytes).collect();
    out.push(b"GET /health HTTP/1.1\r\nX: \xff\xfe\r\n\r\n".to_vec());
    out.push(b"\xff\xfe\xfd / HTTP/1.1\r\n\r\n".to_vec());
    out
}

fn multipart_corpus(rng: &mut Lcg) -> Vec<(String, Vec<u8>)> {
    let part = |name: &str| {
        format!(
            "--b\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"x\"\r\n\r\npwned\r\n"
        )
    };
    let cases: Vec<(String, Vec<u8>)> = vec![
        (
            "multipart/form-data; boundary=b".into(),
            b"--b\r\nbroken".to_vec(),
        ),
        ("multipart/form-data".into(), part("file").into_bytes()),
        (
            "multipart/form-data; boundary=".into(),
            part("file").into_bytes(),
        ),
        (
            "multipart/form-data; boundary=b".into(),
            part("file").into_bytes(),
        ),
        (
            "multipart/form-data; boundary=b".into(),
            format!("{}--b--\r\n", part("other")).into_bytes(),
        ),
        (
            "multipart/form-data; boundary=b".into(),
            b"--b--\r\n".to_vec(),
        ),
        (
            "multipart/form-data; boundary=b".into(),
            format!("--b\r\n{}\r\n\r\nx\r\n--b--\r\n", "H: v\r\n".repeat(5000)).into_bytes(),
        ),
        ("text/plain".into(), b"pwned".to_vec()),
        (
            "multipart/form-data; boundary=b".into(),
            vec![0xff; 100 + rng.below(100)],
        ),
    ];
    cases
}

#[test]
fn ten_thousand_hostile_requests_get_4xx_in_the_reference_shape() {
    let work = TempDir::new("hostile-work");
    let slow = Duration::from_millis(1500);
    let server = TestServer::with(|c| {
        c.max_body_bytes = 64 * 1024;
        c.request_timeout = slow;
    });
    let addr = server.url.trim_start_matches("http://").to_string();
    let id = create_scripted_conversation(&server.url, work.path(), json!({}));
    let conv = format!("/api/conversations/{id}");
    let events_before = event_count(&server.url, &id);
    let never = work.path().join("never-written");
    let templates = [
        Template {
            route: "/api/bash/start_bash_command".into(),
            body: json!({"command": format!("touch {}", never.display()), "cwd": "/tmp", "timeout": 5}),
            fields: &[("command", Kind::Str), ("cwd", Kind::Str)],
        },
        Template {
            route: "/api/bash/execute_bash_command".into(),
            body: json!({"command": format!("touch {}", never.display()), "timeout": 5}),
            fields: &[("command", Kind::Str)],
        },
        Template {
            route: format!("{conv}/events"),
            body: json!({"role": "user", "content": [{"type": "text", "text": "hi"}], "run": false}),
            fields: &[("role", Kind::Str), ("content", Kind::List)],
        },
        Template {
            route: format!("{conv}/confirmation_policy"),
            body: json!({"policy": {"kind": "AlwaysConfirm"}}),
            fields: &[("policy", Kind::Obj)],
        },
        Template {
            route: format!("{conv}/secrets"),
            body: json!({"secrets": {"API": "x"}}),
            fields: &[("secrets", Kind::Obj)],
        },
        Template {
            route: format!("{conv}/events/respond_to_confirmation"),
            body: json!({"accept": true, "reason": "ok"}),
            fields: &[("accept", Kind::Bool), ("reason", Kind::Str)],
        },
        Template {
            route: "/api/conversations".into(),
            body: json!({"agent": {"llm": {"model": "scripted/demo"}}, "workspace": {"working_dir": work.path()}}),
            fields: &[("agent", Kind::Obj), ("workspace", Kind::Obj)],
        },
        Template {
            route: "/api/file/create_directory".into(),
            body: json!({"path": never.display().to_string()}),
            fields: &[("path", Kind::Str)],
        },
    ];
    let mut rng = Lcg::from_env_or_clock("OHS_HOSTILE_SEED");
    let agent = raw_agent();
    let mut failures = Vec::new();
    let mut count = 0usize;

    // 1. JSON bodies, on keep-alive connections.
    for i in 0..9_000 {
        let t = &templates[i % templates.len()];
        let body = mutate(t, &mut rng);
        let mut r = agent
            .post(format!("{}{}", server.url, t.route))
            .content_type("application/json")
            .send(&body[..])
            .unwrap();
        let status = r.status().as_u16();
        let answer = r.body_mut().read_to_vec().unwrap_or_default();
        let sent = String::from_utf8_lossy(&body[..body.len().min(160)]).into_owned();
        check_shape(
            &format!("POST {} #{i} {sent}", t.route),
            status,
            &answer,
            &mut failures,
        );
        count += 1;
    }
    // 2. Oversized bodies, declared and chunked.
    for _ in 0..100 {
        let big = vec![b' '; 65 * 1024 + rng.below(100_000)];
        let mut r = agent
            .post(format!("{}/api/bash/start_bash_command", server.url))
            .send(&big[..])
            .unwrap();
        let status = r.status().as_u16();
        let answer = r.body_mut().read_to_vec().unwrap_or_default();
        check_shape("oversized body", status, &answer, &mut failures);
        count += 1;
    }
    // 3. Broken framing, smuggling, bad heads: one connection each.
    let framing = framing_corpus(&mut rng);
    for round in 0..25 {
        for (j, raw) in framing.iter().enumerate() {
            let (status, body) = raw_exchange(&addr, raw);
            check_shape(
                &format!("framing case {j} (round {round})"),
                status,
                &body,
                &mut failures,
            );
            count += 1;
        }
    }
    // 4. Bad multipart uploads.
    let target = never.display().to_string();
    for _ in 0..20 {
        for (j, (content_type, body)) in multipart_corpus(&mut rng).into_iter().enumerate() {
            let mut r = agent
                .post(format!("{}/api/file/upload?path={target}", server.url))
                .content_type(&content_type)
                .send(&body[..])
                .unwrap();
            let status = r.status().as_u16();
            let answer = r.body_mut().read_to_vec().unwrap_or_default();
            check_shape(
                &format!("multipart case {j}"),
                status,
                &answer,
                &mut failures,
            );
            count += 1;
        }
    }
    // 5. Bad queries and paths.
    for _ in 0..10 {
        for target in [
            "/api/bash/bash_events/search?limit=0",
            "/api/bash/bash_events/search?limit=101",
            "/api/bash/bash_events/search?limit=abc",
            "/api/bash/bash_events/search?sort_order=SIDEWAYS",
            "/api/bash/bash_events/search?command_id__eq=nope",
            "/api/bash/bash_events/search?order__gt=x",
            "/api/bash/bash_events/search?timestamp__gte=yesterday",
            "/nope",
            "/api/nope",
            "/api/bash/bash_events/not-a-uuid",
            "/api/bash/bash_events/0123456789abcdef0123456789abcdef",
            "/api/file/download",
            "/api/file/download?path=relative",
            "/api/file/download?path=%2Fno%2Fsuch%2Ffile",
            "/api/file/download?path=%2Ftmp%00x",
            "/api/conversations/search?limit=-1",
            "/api/conversations/not-a-uuid",
            "/api/conversations/00000000-0000-0000-0000-000000000000/events/search",
        ] {
            let mut r = agent.get(format!("{}{target}", server.url)).call().unwrap();
            let status = r.status().as_u16();
            let answer = r.body_mut().read_to_vec().unwrap_or_default();
            check_shape(&format!("GET {target}"), status, &answer, &mut failures);
            count += 1;
        }
    }
    // 6. Slow senders (see also the dedicated test below) are part of the count.
    count += slow_senders(&server, 5, slow, &mut failures);

    println!("{count} hostile requests sent");
    assert!(count >= 10_000, "only {count} requests");
    assert!(
        failures.is_empty(),
        "{} answers not 4xx with a detail: {:#?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );
    // None had an effect.
    assert!(
        !never.exists(),
        "a hostile request wrote {}",
        never.display()
    );
    let started = get_ok(&format!("{}/api/bash/bash_events/search", server.url));
    assert_eq!(
        started["items"],
        json!([]),
        "a hostile request ran a command"
    );
    assert_eq!(event_count(&server.url, &id), events_before);
    assert_eq!(
        get_ok(&format!("{}/api/conversations/count", server.url)),
        json!(1)
    );
    // And the server still serves.
    let ws = openhands_sync::client::RemoteWorkspace::new(&server.url);
    assert_eq!(ws.execute_command("echo alive").unwrap().stdout, "alive\n");
}

fn event_count(url: &str, id: &str) -> Value {
    get_ok(&format!("{url}/api/conversations/{id}/events/count"))
}

/// Opens `n` connections that trickle a request head and `n` that trickle
/// a body, one byte at a time, and never finish. Returns how many were
/// answered; each answer must be 408 in the reference shape, arriving after
/// the server's request timeout and not long after.
fn slow_senders(
    server: &TestServer,
    n: usize,
    timeout: Duration,
    failures: &mut Vec<String>,
) -> usize {
    let addr = server.url.trim_start_matches("http://").to_string();
    let threads: Vec<_> = (0..2 * n)
        .map(|i| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(&addr).unwrap();
                s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
                // Half trickle their head, half send the head at once and
                // trickle the body.
                let request: Vec<u8> = if i % 2 == 0 {
                    b"POST /api/bash/execute_bash_command HTTP/1.1\r\nHost: x\r\nX-Padding: ".to_vec()
                } else {
                    s.write_all(b"POST /api/bash/execute_bash_command HTTP/1.1\r\nContent-Length: 5000\r\n\r\n")
                        .unwrap();
                    let mut r = b"{\"command\": \"".to_vec();
                    r.extend(std::iter::repeat_n(b'x', 4000));
                    r
                };
                let started = Instant::now();
                let mut out = Vec::new();
                let mut sent = 0;
                let mut writable = true;
                while started.elapsed() < Duration::from_secs(20) {
                    if writable && sent < request.len() {
                        writable = s.write_all(&request[sent..sent + 1]).is_ok();
                        sent += 1;
                    }
                    let mut buf = [0u8; 1024];
                    match s.read(&mut buf) {
                        Ok(0) => break,
                        Ok(k) => out.extend_from_slice(&buf[..k]),
                        Err(_) => {}
                    }
                }
                (started.elapsed(), out)
            })
        })
        .collect();
    let mut answered = 0;
    for t in threads {
        let (took, out) = t.join().unwrap();
        let (status, body) = parse_response(&out);
        if status != 408 || took < timeout || took > timeout * 2 + Duration::from_secs(5) {
            failures.push(format!("slow sender: {status} after {took:?}"));
        }
        check_shape("slow sender", status, &body, failures);
        answered += 1;
    }
    answered
}

#[test]
fn slow_senders_time_out_without_slowing_anyone_else() {
    let timeout = Duration::from_millis(1500);
    let server = TestServer::with(|c| c.request_timeout = timeout);
    let url = server.url.clone();
    // While 20 connections trickle, ordinary requests are answered at once.
    let normal = std::thread::spawn(move || {
        let agent = raw_agent();
        let mut worst = Duration::ZERO;
        let until = Instant::now() + Duration::from_millis(1200);
        while Instant::now() < until {
            let t = Instant::now();
            let r = agent.get(format!("{url}/health")).call().unwrap();
            assert_eq!(r.status().as_u16(), 200);
            worst = worst.max(t.elapsed());
        }
        worst
    });
    let mut failures = Vec::new();
    let answered = slow_senders(&server, 10, timeout, &mut failures);
    let worst = normal.join().unwrap();
    assert_eq!(answered, 20);
    assert!(failures.is_empty(), "{failures:#?}");
    // A generous bound: the point is "not blocked for the timeout".
    assert!(worst < timeout, "a normal request waited {worst:?}");
}

#[test]
fn connections_beyond_the_cap_get_503_and_the_server_recovers() {
    let server = TestServer::with(|c| c.max_connections = 8);
    let addr = server.url.trim_start_matches("http://").to_string();
    let held: Vec<TcpStream> = (0..8).map(|_| TcpStream::connect(&addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(100));
    let (status, body) = raw_exchange(&addr, b"GET /health HTTP/1.1\r\n\r\n");
    assert_eq!(status, 503);
    assert!(String::from_utf8_lossy(&body).contains("detail"));
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, _) = raw_exchange(&addr, b"GET /health HTTP/1.1\r\nConnection: close\r\n\r\n");
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still refused after the held connections closed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn chunked_bodies_pipelining_and_100_continue_work() {
    let server = TestServer::start();
    let addr = server.url.trim_start_matches("http://").to_string();
    let body = br#"{"command": "echo chunked", "timeout": 10}"#;
    let mut request =
        b"POST /api/bash/execute_bash_command HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n"
            .to_vec();
    for piece in body.chunks(7) {
        request.extend(format!("{:x};ext=1\r\n", piece.len()).into_bytes());
        request.extend_from_slice(piece);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\nTrailer: x\r\n\r\n");
    // A second request pipelined behind the first, on the same connection.
    request.extend_from_slice(b"GET /health HTTP/1.1\r\nConnection: close\r\n\r\n");
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.starts_with("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK"),
        "{text}"
    );
    assert!(text.contains("\"stdout\":\"chunked\\n\""), "{text}");
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 2, "{text}");
}
