//! A fake LLM provider on 127.0.0.1 for tests: answers OpenAI chat
//! completions and Anthropic messages by playing the seed task from the
//! request itself, or with a custom handler. Records every request body.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use serde_json::{json, Value};

/// One scripted answer: status, extra headers, body, delay.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub delay: std::time::Duration,
}

impl Reply {
    pub fn json(status: u16, v: Value) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: v.to_string(),
            delay: std::time::Duration::ZERO,
        }
    }
}

type Handler = dyn Fn(&str, &Value, usize) -> Reply + Send + Sync;

pub struct FakeLlm {
    pub url: String,
    pub requests: Arc<Mutex<Vec<(String, Value)>>>,
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

impl FakeLlm {
    /// A server that plays the seed task in both APIs.
    pub fn seed() -> Self {
        Self::with(|path, body, _| {
            if path.ends_with("/messages") {
                Reply::json(200, anthropic_answer(body))
            } else {
                Reply::json(200, openai_answer(body))
            }
        })
    }

    pub fn with(handler: impl Fn(&str, &Value, usize) -> Reply + Send + Sync + 'static) -> Self {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind"));
        let url = format!("http://{}", server.server_addr().to_ip().expect("ip"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let (srv, reqs) = (Arc::clone(&server), Arc::clone(&requests));
        let thread = std::thread::spawn(move || {
            while let Ok(mut rq) = srv.recv() {
                let mut raw = String::new();
                let _ = rq.as_reader().read_to_string(&mut raw);
                let body: Value = serde_json::from_str(&raw).unwrap_or(Value::Null);
                let path = rq.url().to_string();
                let n = {
                    let mut r = reqs.lock().unwrap();
                    r.push((path.clone(), body.clone()));
                    r.len()
                };
                let handler = Arc::clone(&handler);
                std::thread::spawn(move || {
                    let reply = handler(&path, &body, n);
                    std::thread::sleep(reply.delay);
                    let mut resp =
                        tiny_http::Response::from_string(reply.body).with_status_code(reply.status);
                    resp.add_header(
                        tiny_http::Header::from_bytes(
                            &b"Content-Type"[..],
                            &b"application/json"[..],
                        )
                        .unwrap(),
                    );
                    for (k, v) in reply.headers {
                        resp.add_header(
                            tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).unwrap(),
                        );
                    }
                    let _ = rq.respond(resp);
                });
            }
        });
        FakeLlm {
            url,
            requests,
            server,
            thread: Some(thread),
        }
    }

    pub fn request_count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| {
                p.get("text")
                    .and_then(Value::as_str)
                    .or_else(|| p.get("content").and_then(Value::as_str))
            })
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

/// The seed task's next step: (tool, arguments), or None for a title.
fn seed_step(user_text: &str, tool_results: &[String]) -> (String, Value) {
    let t = user_text.to_lowercase();
    let plan: Vec<(&str, Value)> = if t.contains("delete") {
        vec![
            (
                "terminal",
                json!({"command": "rm FACTS.txt && echo deleted", "security_risk": "LOW"}),
            ),
            ("finish", json!({"message": "Deleted FACTS.txt."})),
        ]
    } else {
        let pwd = tool_results
            .iter()
            .flat_map(|r| r.lines())
            .find_map(|l| l.strip_prefix("PWD="))
            .unwrap_or(".")
            .trim()
            .to_string();
        vec![
            (
                "terminal",
                json!({"command": "echo PWD=$(pwd) && ls -la", "security_risk": "LOW"}),
            ),
            (
                "file_editor",
                json!({"command": "create", "path": format!("{pwd}/FACTS.txt"),
                                    "file_text": "1. one\n2. two\n3. three\n", "security_risk": "LOW"}),
            ),
            ("finish", json!({"message": "Wrote 3 facts to FACTS.txt."})),
        ]
    };
    let (name, args) = plan[tool_results.len().min(plan.len() - 1)].clone();
    (name.to_string(), args)
}

fn usage() -> Value {
    json!({"prompt_tokens": 1000, "completion_tokens": 50, "total_tokens": 1050})
}

pub fn openai_answer(body: &Value) -> Value {
    let msgs = body["messages"].as_array().cloned().unwrap_or_default();
    let id = format!("chatcmpl-{}", openhands_sync::util::id::uuid4_hex());
    if body.get("tools").is_none() {
        return json!({"id": id, "choices": [{"index": 0, "message": {"role": "assistant", "content": "Facts about the project"}, "finish_reason": "stop"}], "usage": usage()});
    }
    let last_user = msgs.iter().rposition(|m| m["role"] == "user").unwrap_or(0);
    let results: Vec<String> = msgs[last_user + 1..]
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| text_of(&m["content"]))
        .collect();
    let (name, args) = seed_step(&text_of(&msgs[last_user]["content"]), &results);
    json!({"id": id, "choices": [{"index": 0, "message": {"role": "assistant", "content": null,
        "tool_calls": [{"id": format!("call_{}", results.len()), "type": "function",
                        "function": {"name": name, "arguments": args.to_string()}}]},
        "finish_reason": "tool_calls"}], "usage": usage()})
}

pub fn anthropic_answer(body: &Value) -> Value {
    let msgs = body["messages"].as_array().cloned().unwrap_or_default();
    let id = format!("msg_{}", openhands_sync::util::id::uuid4_hex());
    let usage = json!({"input_tokens": 900, "output_tokens": 40, "cache_read_input_tokens": 100});
    if body.get("tools").is_none() {
        return json!({"id": id, "type": "message", "role": "assistant", "content": [{"type": "text", "text": "Facts"}], "usage": usage});
    }
    // User turns hold text and tool_result blocks; the task is the last text
    // block, its progress the tool results after it.
    let blocks: Vec<Value> = msgs
        .iter()
        .filter(|m| m["role"] == "user")
        .flat_map(|m| m["content"].as_array().cloned().unwrap_or_default())
        .collect();
    let last_text = blocks
        .iter()
        .rposition(|b| b["type"] == "text")
        .unwrap_or(0);
    let user_text = blocks
        .get(last_text)
        .and_then(|b| b["text"].as_str())
        .unwrap_or("")
        .to_string();
    let results: Vec<String> = blocks[last_text..]
        .iter()
        .filter(|b| b["type"] == "tool_result")
        .map(|b| text_of(&b["content"]))
        .collect();
    let (name, args) = seed_step(&user_text, &results);
    json!({"id": id, "type": "message", "role": "assistant",
           "content": [{"type": "tool_use", "id": format!("toolu_{}", results.len()), "name": name, "input": args}],
           "stop_reason": "tool_use", "usage": usage})
}

/// A fake LLM that counts to `n` with the terminal, slowly, then finishes.
pub fn counting(n: usize, delay: std::time::Duration) -> FakeLlm {
    FakeLlm::with(move |_, body, _| {
        let msgs = body["messages"].as_array().cloned().unwrap_or_default();
        if body.get("tools").is_none() {
            return Reply::json(200, openai_answer(body));
        }
        let done = msgs.iter().filter(|m| m["role"] == "tool").count();
        let (name, args) = if done < n {
            ("terminal", json!({"command": format!("echo {done}")}))
        } else {
            ("finish", json!({"message": "counted"}))
        };
        let mut r = Reply::json(
            200,
            json!({"id": format!("c{done}"), "choices": [{"index": 0, "message": {
            "role": "assistant", "content": null,
            "tool_calls": [{"id": format!("call_{done}"), "type": "function", "function": {"name": name, "arguments": args.to_string()}}]
        }, "finish_reason": "tool_calls"}], "usage": {"prompt_tokens": 10, "completion_tokens": 5}}),
        );
        r.delay = delay;
        r
    })
}
