#!/usr/bin/env python3
"""The interop suite's scripted LLM: an OpenAI-compatible chat-completions
server (stdlib only) that decides each answer from the request alone, so any
number of conversations can share it.

  fake_llm.py --port P [--log requests.jsonl]

Requests without tools get a short title. With tools, the last user message
picks a script and the number of tool results after it picks the step:
  "... facts ..."            terminal `echo PWD=$(pwd) && ls -la`,
                             file_editor create <PWD>/FACTS.txt, finish
  "... delete ..."           terminal `rm FACTS.txt && echo removed`, finish
  "count to N ..."           terminal `echo i` for i in 1..N, finish
  anything else              finish
A message containing "slowly" makes every answer wait 400 ms.
Usage is reported as 1000 + 10 * messages prompt tokens and 40 completion tokens.
"""
import argparse
import json
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOG_LOCK = threading.Lock()


def text(content):
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def script(task, results):
    t = task.lower()
    if "delete" in t:
        return [("terminal", {"command": "rm FACTS.txt && echo removed"}),
                ("finish", {"message": "FACTS.txt is gone."})]
    if "facts" in t:
        pwd = "."
        for r in results:
            for line in r.splitlines():
                if line.startswith("PWD="):
                    pwd = line[4:].strip()
        body = "1. It is a scratch project.\n2. It was listed with ls.\n3. This line came from the interop LLM.\n"
        return [("terminal", {"command": "echo PWD=$(pwd) && ls -la"}),
                ("file_editor", {"command": "create", "path": pwd + "/FACTS.txt", "file_text": body}),
                ("finish", {"message": "FACTS.txt has three facts."})]
    m = re.search(r"count to (\d+)", t)
    if m:
        steps = [("terminal", {"command": "echo %d" % i}) for i in range(1, int(m.group(1)) + 1)]
        return steps + [("finish", {"message": "Counted."})]
    return [("finish", {"message": "Nothing to do."})]


def reply(body):
    messages = body.get("messages") or []
    usage = {"prompt_tokens": 1000 + 10 * len(messages), "completion_tokens": 40}
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    if not body.get("tools"):
        return {"role": "assistant", "content": "Interop conversation"}, usage, False
    users = [i for i, m in enumerate(messages) if m.get("role") == "user"]
    last = users[-1] if users else -1
    task = text(messages[last].get("content")) if last >= 0 else ""
    results = [text(m.get("content")) for m in messages[last + 1:] if m.get("role") == "tool"]
    steps = script(task, results)
    name, args = steps[min(len(results), len(steps) - 1)]
    offered = {(t.get("function") or t).get("name"): (t.get("function") or t).get("parameters", {}) for t in body["tools"]}
    if name not in offered:
        return {"role": "assistant", "content": "The %s tool is not offered." % name}, usage, "slowly" in task
    if "security_risk" in offered[name].get("properties", {}):
        args = dict(args, security_risk="LOW")
    call = {"id": "call_" + uuid.uuid4().hex[:20], "type": "function",
            "function": {"name": name, "arguments": json.dumps(args)}}
    return {"role": "assistant", "content": None, "tool_calls": [call]}, usage, "slowly" in task


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send_json(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.send_json(200, {"object": "list", "data": [{"id": "interop-model", "object": "model"}]})

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return self.send_json(400, {"error": {"message": "invalid JSON"}})
        if self.server.log_path:
            with LOG_LOCK, open(self.server.log_path, "a") as f:
                f.write(json.dumps({"path": self.path, "body": body}) + "\n")
        if not self.path.rstrip("/").endswith("chat/completions"):
            return self.send_json(404, {"error": {"message": "unknown path"}})
        message, usage, slow = reply(body)
        if slow:
            time.sleep(0.4)
        finish = "tool_calls" if message.get("tool_calls") else "stop"
        self.send_json(200, {"id": "chatcmpl-" + uuid.uuid4().hex, "object": "chat.completion",
                             "created": int(time.time()), "model": body.get("model", "interop-model"),
                             "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                             "usage": usage})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--log")
    a = ap.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    server.log_path = a.log
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
