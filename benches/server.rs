//! Server benchmarks, ours and the reference Python server side by side.
//!
//! ```text
//! cargo bench --bench server                 # both columns when the reference venv exists
//! OHS_REF_VENV=/path/to/venv cargo bench --bench server
//! ```
//!
//! Each server is started in a fresh temporary directory on a free loopback
//! port and driven from this process; the LLM is an in-process scripted fake
//! on 127.0.0.1. Printed as one table with ratios (ours / reference). The
//! same quantities as `../shared/conformance/bench_server.py`, plus RSS after
//! 1,000 idle conversations, WebSocket fan-out and binary size. Timings are
//! only printed, never asserted.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A minimal keep-alive HTTP/1.1 client (so the client's own cost is small).
struct Http {
    stream: BufReader<TcpStream>,
    port: u16,
}

impl Http {
    fn connect(port: u16) -> Http {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_nodelay(true).ok();
        s.set_read_timeout(Some(Duration::from_secs(120))).ok();
        Http {
            stream: BufReader::new(s),
            port,
        }
    }

    fn request(&mut self, method: &str, path: &str, body: Option<&Value>) -> (u16, Vec<u8>) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.port,
            body.len()
        );
        self.stream
            .get_mut()
            .write_all(req.as_bytes())
            .expect("write");
        let mut line = String::new();
        if self.stream.read_line(&mut line).unwrap_or(0) == 0 {
            // The server closed an idle keep-alive connection: reconnect once.
            *self = Http::connect(self.port);
            self.stream
                .get_mut()
                .write_all(req.as_bytes())
                .expect("write");
            self.stream.read_line(&mut line).expect("status line");
        }
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut len = 0usize;
        let mut chunked = false;
        loop {
            line.clear();
            self.stream.read_line(&mut line).expect("header");
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let lower = l.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
            if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
                chunked = true;
            }
        }
        let mut out = Vec::new();
        if chunked {
            loop {
                line.clear();
                self.stream.read_line(&mut line).expect("chunk size");
                let n = usize::from_str_radix(line.trim(), 16).unwrap_or(0);
                let mut chunk = vec![0u8; n + 2];
                self.stream.read_exact(&mut chunk).expect("chunk");
                if n == 0 {
                    break;
                }
                out.extend_from_slice(&chunk[..n]);
            }
        } else {
            out.resize(len, 0);
            self.stream.read_exact(&mut out).expect("body");
        }
        (status, out)
    }

    fn json(&mut self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let (_, b) = self.request(method, path, body);
        serde_json::from_slice(&b).unwrap_or(Value::Null)
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn rss_mb(pid: u32) -> f64 {
    fn tree(pid: u32, out: &mut Vec<u32>) {
        out.push(pid);
        if let Ok(c) = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")) {
            for p in c.split_whitespace().filter_map(|p| p.parse().ok()) {
                tree(p, out);
            }
        }
    }
    let mut pids = Vec::new();
    tree(pid, &mut pids);
    let kb: u64 = pids
        .iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/status")).ok())
        .filter_map(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(String::from)
        })
        .filter_map(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
        })
        .sum();
    kb as f64 / 1024.0
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// The scripted LLM: `echo` -> terminal then finish; no tools -> a title.
fn fake_llm() -> (String, Arc<AtomicBool>) {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", server.server_addr().to_ip().unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let halt = Arc::clone(&stop);
    std::thread::spawn(move || {
        for mut rq in server.incoming_requests() {
            if halt.load(Ordering::SeqCst) {
                break;
            }
            let mut raw = String::new();
            let _ = rq.as_reader().read_to_string(&mut raw);
            let body: Value = serde_json::from_str(&raw).unwrap_or(Value::Null);
            let msgs = body["messages"].as_array().cloned().unwrap_or_default();
            let tools = body.get("tools").is_some();
            let done = msgs.iter().filter(|m| m["role"] == "tool").count();
            let message = if !tools {
                json!({"role": "assistant", "content": "Bench"})
            } else if done == 0 {
                json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_0", "type": "function",
                    "function": {"name": "terminal", "arguments": "{\"command\": \"echo hi\"}"}}]})
            } else {
                json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
                    "function": {"name": "finish", "arguments": "{\"message\": \"done\"}"}}]})
            };
            let answer = json!({"id": "chatcmpl-bench", "object": "chat.completion", "model": "bench",
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110}});
            let mut resp = tiny_http::Response::from_string(answer.to_string());
            resp.add_header(
                tiny_http::Header::from_bytes(&b"Content-Type"[..], &b"application/json"[..])
                    .unwrap(),
            );
            let _ = rq.respond(resp);
        }
    });
    (url, stop)
}

struct Target {
    name: &'static str,
    program: PathBuf,
    args: Vec<String>,
    size_bytes: Option<u64>,
}

struct Running {
    child: Child,
    port: u16,
    _dir: PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self._dir);
    }
}

fn start(t: &Target) -> (Running, Duration) {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("ohs-bench-{}-{}", t.name, port));
    std::fs::create_dir_all(&dir).unwrap();
    let started = Instant::now();
    let child = Command::new(&t.program)
        .args(&t.args)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .current_dir(&dir)
        .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        .env("OPENHANDS_SUPPRESS_BANNER", "1")
        .env("LOG_LEVEL", "warning")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start server");
    loop {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            if out.starts_with("HTTP/1.1 200") {
                break;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{} did not start",
            t.name
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let took = started.elapsed();
    (
        Running {
            child,
            port,
            _dir: dir,
        },
        took,
    )
}

fn agent(llm_url: &str) -> Value {
    json!({"kind": "Agent", "llm": {"model": "openai/bench", "api_key": "bench-key", "base_url": llm_url,
            "usage_id": "agent", "num_retries": 0},
           "tools": [{"name": "terminal", "params": {}}, {"name": "file_editor", "params": {}}, {"name": "task_tracker", "params": {}}],
           "include_default_tools": ["FinishTool", "ThinkTool"]})
}

fn try_create(http: &mut Http, llm_url: &str) -> Result<String, String> {
    let body = json!({"agent": agent(llm_url), "workspace": {"working_dir": "workspace/project", "kind": "LocalWorkspace"}});
    let (status, answer) = http.request("POST", "/api/conversations", Some(&body));
    let v: Value = serde_json::from_slice(&answer).unwrap_or(Value::Null);
    v["id"].as_str().map(String::from).ok_or_else(|| {
        format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&answer)
                .chars()
                .take(200)
                .collect::<String>()
        )
    })
}

fn create(http: &mut Http, llm_url: &str) -> String {
    try_create(http, llm_url).expect("conversation created")
}

/// A conversation holding `messages` user messages (two stored events each).
fn conversation_with_events(port: u16, llm_url: &str, messages: usize) -> String {
    let mut http = Http::connect(port);
    let id = create(&mut http, llm_url);
    let path = format!("/api/conversations/{id}/events");
    for i in 0..messages {
        let body = json!({"role": "user", "content": [{"type": "text", "text": format!("m{i}")}], "run": false});
        http.request("POST", &path, Some(&body));
    }
    std::thread::sleep(Duration::from_millis(500));
    id
}

/// Events/s delivered (summed over sockets) when `subscribers` sockets
/// replay a stored conversation (`resend_mode=all`) at once: the socket
/// fan-out path, without the cost of producing and storing each event.
fn fanout(port: u16, id: &str, subscribers: usize) -> f64 {
    let received = Arc::new(AtomicU64::new(0));
    let mut sockets = Vec::new();
    for _ in 0..subscribers {
        let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        tcp.set_read_timeout(Some(Duration::from_millis(1500))).ok();
        let url = format!("ws://127.0.0.1:{port}/sockets/events/{id}?resend_mode=all");
        sockets.push(tungstenite::client(url.as_str(), tcp).unwrap().0);
    }
    let started = Instant::now();
    let readers: Vec<_> = sockets
        .into_iter()
        .map(|mut ws| {
            let received = Arc::clone(&received);
            std::thread::spawn(move || {
                let mut last = Instant::now();
                // Read until the socket goes quiet: replay done.
                while let Ok(m) = ws.read() {
                    if matches!(m, tungstenite::Message::Text(_)) {
                        received.fetch_add(1, Ordering::Relaxed);
                        last = Instant::now();
                    }
                }
                last
            })
        })
        .collect();
    let end = readers
        .into_iter()
        .filter_map(|r| r.join().ok())
        .max()
        .unwrap_or_else(Instant::now);
    received.load(Ordering::Relaxed) as f64 / end.duration_since(started).as_secs_f64()
}

struct Results(Vec<(&'static str, f64)>);

/// What this machine charges before any server code runs: spawning and
/// reaping `sh -c 'echo hi'` with its output piped (every exec does that), and
/// creating a small file in the temp directory (every stored event does
/// that; an exec stores two). Measured in the same run as the servers.
fn floors() -> Vec<(&'static str, f64)> {
    let mut spawn: Vec<f64> = (0..200)
        .map(|_| {
            let t0 = Instant::now();
            let out = Command::new("/bin/sh")
                .args(["-c", "echo hi"])
                .stdin(Stdio::null())
                .stderr(Stdio::piped())
                .output()
                .expect("sh runs");
            assert_eq!(out.stdout, b"hi\n");
            t0.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    let dir = std::env::temp_dir().join(format!("ohs-bench-floor-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let body = vec![b'x'; 300];
    let mut files: Vec<f64> = (0..400)
        .map(|i| {
            let t0 = Instant::now();
            std::fs::write(dir.join(format!("event-{i}")), &body).unwrap();
            t0.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    let (spawn, file) = (percentile(&mut spawn, 0.5), percentile(&mut files, 0.5));
    vec![
        ("sh_spawn_p50_ms", spawn),
        ("file_create_p50_us", file),
        ("exec_floor_ms", spawn + file / 1000.0),
    ]
}

fn measure(t: &Target, llm_url: &str, full: bool) -> Results {
    let mut r = Vec::new();
    let (server, startup) = start(t);
    let pid = server.child.id();
    r.push(("startup_ms", startup.as_secs_f64() * 1000.0));
    std::thread::sleep(Duration::from_millis(300));
    r.push(("idle_rss_mb", rss_mb(pid)));

    let mut http = Http::connect(server.port);
    let mut lat: Vec<f64> = (0..2000)
        .map(|_| {
            let t0 = Instant::now();
            http.request("GET", "/health", None);
            t0.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    r.push(("health_p50_us", percentile(&mut lat, 0.5)));
    r.push(("health_p99_us", percentile(&mut lat, 0.99)));

    let echo = json!({"command": "echo hi", "timeout": 30});
    let mut lat: Vec<f64> = (0..100)
        .map(|_| {
            let t0 = Instant::now();
            http.request("POST", "/api/bash/execute_bash_command", Some(&echo));
            t0.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    r.push(("exec_p50_ms", percentile(&mut lat, 0.5)));
    r.push(("exec_p99_ms", percentile(&mut lat, 0.99)));

    let done = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(3);
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (done, port, echo) = (Arc::clone(&done), server.port, echo.clone());
            std::thread::spawn(move || {
                let mut h = Http::connect(port);
                while Instant::now() < until {
                    h.request("POST", "/api/bash/execute_bash_command", Some(&echo));
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let t0 = Instant::now();
    for w in workers {
        let _ = w.join();
    }
    r.push((
        "exec_rps_8",
        done.load(Ordering::Relaxed) as f64 / t0.elapsed().as_secs_f64(),
    ));

    let mut lat: Vec<f64> = (0..20)
        .map(|_| {
            let t0 = Instant::now();
            create(&mut http, llm_url);
            t0.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    r.push(("conv_create_p50_ms", percentile(&mut lat, 0.5)));
    std::thread::sleep(Duration::from_millis(300));
    r.push(("rss_20_conv_mb", rss_mb(pid)));

    let mut runs: Vec<f64> = (0..3)
        .map(|_| {
            let id = create(&mut http, llm_url);
            let t0 = Instant::now();
            let msg = json!({"role": "user", "content": [{"type": "text", "text": "echo hi"}], "run": true});
            http.request("POST", &format!("/api/conversations/{id}/events"), Some(&msg));
            loop {
                let v = http.json("GET", &format!("/api/conversations/{id}"), None);
                if v["execution_status"] == "finished" || t0.elapsed() > Duration::from_secs(60) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            t0.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    r.push(("conv_run_ms", percentile(&mut runs, 0.5)));

    let stored = conversation_with_events(server.port, llm_url, 1000);
    r.push(("fanout_1_eps", fanout(server.port, &stored, 1)));
    r.push(("fanout_16_eps", fanout(server.port, &stored, 16)));

    if full {
        let mut made = 31;
        while made < 1000 {
            match try_create(&mut http, llm_url) {
                Ok(_) => made += 1,
                Err(e) => {
                    eprintln!(
                        "{}: conversation {made} could not be created ({e}); RSS measured there",
                        t.name
                    );
                    break;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(500));
        r.push(("convs_created", made as f64));
        r.push(("rss_1000_conv_mb", rss_mb(pid)));
    }
    if let Some(size) = t.size_bytes {
        r.push(("binary_mb", size as f64 / 1e6));
    }
    Results(r)
}

fn main() {
    // `cargo bench` passes --bench; other arguments are ignored.
    let ours = PathBuf::from(env!("CARGO_BIN_EXE_openhands-sync"));
    let venv = std::env::var_os("OHS_REF_VENV")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/openhands-sync/ref-venv"))
        });
    let python = venv.map(|v| v.join("bin/python")).filter(|p| p.exists());
    let (llm_url, stop) = fake_llm();
    let targets = {
        let mut t = vec![Target {
            name: "openhands-sync",
            size_bytes: std::fs::metadata(&ours).ok().map(|m| m.len()),
            program: ours,
            args: vec!["serve".into()],
        }];
        match &python {
            Some(p) => t.push(Target {
                name: "reference",
                program: p.clone(),
                args: vec!["-m".into(), "openhands.agent_server".into()],
                size_bytes: None,
            }),
            None => println!("note: no reference venv (set OHS_REF_VENV or run tests/interop/run.sh once): reference column skipped"),
        }
        t
    };
    let full = std::env::var("OHS_BENCH_QUICK").is_err();
    let results: Vec<Results> = targets
        .iter()
        .map(|t| {
            eprintln!("measuring {} ...", t.name);
            measure(t, &llm_url, full)
        })
        .collect();
    stop.store(true, Ordering::SeqCst);
    let floors = floors();
    let machine = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    println!(
        "\nmachine: {} cores, {machine}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    print!("{:<22}", "metric");
    for t in &targets {
        print!("{:>16}", t.name);
    }
    if targets.len() == 2 {
        print!("{:>12}", "ratio");
    }
    println!();
    for (i, (name, ours)) in results[0].0.iter().enumerate() {
        print!("{name:<22}{ours:>16.2}");
        if let Some(reference) = results
            .get(1)
            .and_then(|r| r.0.iter().find(|(n, _)| n == name))
            .map(|(_, v)| *v)
        {
            let _ = i;
            print!("{reference:>16.2}{:>12.3}", ours / reference);
        } else if targets.len() == 2 {
            print!("{:>16}{:>12}", "n/a", "");
        }
        println!();
    }
    println!("\nmachine floor (no server involved)");
    for (name, value) in floors {
        println!("{name:<22}{value:>16.2}");
    }
    println!(
        "(exec_floor_ms = one spawn plus the one event file an exec writes while the caller waits)"
    );
}
