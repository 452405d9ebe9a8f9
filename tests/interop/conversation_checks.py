#!/usr/bin/env python3
"""Conversation interop checks: the official OpenHands Python client
(openhands-sdk 1.58.2) drives a conversation server started from --server-cmd
(in fresh temporary directories, on free loopback ports), with the suite's own
scripted LLM (fake_llm.py, started here).

Scenarios: the seed flow; pause during a run; AlwaysConfirm with accept and
reject; two clients on one conversation; a server restart between two runs;
a session key (HTTP header and WebSocket auth).

  conversation_checks.py --server-cmd "target/release/openhands-sync serve" [--only NAME]

Prints PASS/FAIL per check and ends with "N passed, M failed"; exits non-zero
on any failure.
"""
import argparse
import os
import shlex
import subprocess
import sys
import time

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("OPENHANDS_SUPPRESS_BANNER", "1")

import httpx  # noqa: E402
from pydantic import SecretStr  # noqa: E402

from openhands.sdk import LLM, Conversation, Workspace  # noqa: E402
from openhands.sdk.event import ConversationStateUpdateEvent  # noqa: E402
from openhands.sdk.security.confirmation_policy import AlwaysConfirm, NeverConfirm  # noqa: E402
from openhands.tools.preset.default import get_default_agent  # noqa: E402

from support import check, finish, free_port, temp_dir  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def wait_until(pred, seconds=30, step=0.05):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return False


class Server:
    """A server child process in its own directory."""

    def __init__(self, cmd, cwd=None, env=None):
        self.cmd, self.env = cmd, dict(os.environ, LOG_JSON="true", **(env or {}))
        self.cwd = cwd or temp_dir("ohs-conv-interop-")
        self.proc = None

    def start(self):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        argv = shlex.split(self.cmd) + ["--host", "127.0.0.1", "--port", str(self.port)]
        self.log = open(os.path.join(self.cwd, "server-%d.log" % self.port), "wb")
        self.proc = subprocess.Popen(argv, cwd=self.cwd, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        ok = wait_until(lambda: self._healthy(), 30)
        if not ok:
            raise RuntimeError("server did not become healthy")
        return self

    def _healthy(self):
        if self.proc.poll() is not None:
            raise RuntimeError("server exited with %s" % self.proc.returncode)
        try:
            return httpx.get(self.url + "/health", timeout=1).status_code == 200
        except Exception:
            return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                return self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return self.proc.wait()
        return self.proc.returncode if self.proc else None


def make_llm(url, usage_id="agent"):
    return LLM(usage_id=usage_id, model="openai/interop-model", base_url=url, api_key=SecretStr("interop-key"),
               input_cost_per_token=1e-6, output_cost_per_token=2e-6, num_retries=0)


def kinds(events):
    return [type(e).__name__ for e in events]


def working_dir(ws, server):
    wd = str(ws.working_dir)
    return wd if wd.startswith("/") else os.path.join(server.cwd, wd)


def seed_flow(cmd, llm_url):
    server = Server(cmd).start()
    try:
        ws = Workspace(host=server.url)
        r = ws.execute_command("pwd")
        check("seed: pwd in the server's directory", r.exit_code == 0 and r.stdout.strip() == os.path.realpath(server.cwd), r)
        received = []
        conv = Conversation(agent=get_default_agent(llm=make_llm(llm_url), cli_mode=True), workspace=ws,
                            callbacks=[received.append])
        check("seed: state.id", bool(str(conv.state.id)))
        conv.send_message("Read the current repo and write 3 facts about the project into FACTS.txt.")
        title = conv.generate_title(max_length=60, llm=make_llm(llm_url, "title"))
        check("seed: title", bool(title) and len(title) <= 60, title)
        conv.run()
        check("seed: finished after run 1", "finished" in str(conv.state.execution_status).lower(), conv.state.execution_status)
        facts = os.path.join(working_dir(ws, server), "FACTS.txt")
        check("seed: FACTS.txt has 3 lines", os.path.exists(facts) and len(open(facts).read().splitlines()) == 3)
        conv.send_message("Great! Now delete that file.")
        conv.run()
        check("seed: finished after run 2", "finished" in str(conv.state.execution_status).lower())
        check("seed: FACTS.txt deleted", not os.path.exists(facts))
        events = conv.state.events
        k = kinds(events)
        check("seed: events include actions and observations", "ActionEvent" in k and "ObservationEvent" in k, k)
        check("seed: no duplicate events", len({e.id for e in events}) == len(events))
        check("seed: slicing", len(list(events[-5:])) == 5)
        check("seed: state updates", any(isinstance(e, ConversationStateUpdateEvent) for e in events))
        wait_until(lambda: {e.id for e in events if type(e).__name__ in ("ActionEvent", "ObservationEvent")}
                   <= {e.id for e in received}, 10)
        check("seed: callbacks saw every action and observation",
              {e.id for e in events if type(e).__name__ in ("ActionEvent", "ObservationEvent")} <= {e.id for e in received})
        cost = conv.conversation_stats.get_combined_metrics().accumulated_cost
        check("seed: accumulated cost > 0", cost > 0, cost)
        cid = str(conv.state.id)
        conv.close()
        gone = httpx.get("%s/api/conversations/%s" % (server.url, cid)).status_code
        check("seed: close deletes the conversation", gone == 404, gone)
    finally:
        check("seed: server exits 0", server.stop() == 0)


def pause_during_run(cmd, llm_url):
    server = Server(cmd).start()
    try:
        ws = Workspace(host=server.url)
        conv = Conversation(agent=get_default_agent(llm=make_llm(llm_url), cli_mode=True), workspace=ws)
        conv.send_message("count to 30 slowly")
        conv.run(blocking=False)
        time.sleep(1.5)
        conv.pause()
        paused = wait_until(lambda: "paused" in str(conv.state.execution_status).lower(), 10)
        check("pause: status paused", paused, conv.state.execution_status)
        time.sleep(1.0)
        steps = kinds(conv.state.events).count("ActionEvent")
        check("pause: stopped early", 0 < steps < 31, steps)
        check("pause: PauseEvent recorded", "PauseEvent" in kinds(conv.state.events))
        conv.run()
        check("pause: a new run resumes to the end", "finished" in str(conv.state.execution_status).lower())
        conv.close()
    finally:
        server.stop()


def confirmation(cmd, llm_url):
    server = Server(cmd).start()
    try:
        ws = Workspace(host=server.url)
        conv = Conversation(agent=get_default_agent(llm=make_llm(llm_url), cli_mode=True), workspace=ws)
        conv.set_confirmation_policy(AlwaysConfirm())
        conv.send_message("write 3 facts into FACTS.txt")
        conv.run()
        status = str(conv.state.execution_status).lower()
        check("confirm: waiting_for_confirmation", "waiting_for_confirmation" in status, status)
        check("confirm: nothing ran yet", "ObservationEvent" not in kinds(conv.state.events))
        conv.reject_pending_actions("not this one")
        wait_until(lambda: "UserRejectObservation" in kinds(conv.state.events), 10)
        check("confirm: reject records a UserRejectObservation", "UserRejectObservation" in kinds(conv.state.events))
        # Accept: each run() approves the pending action; the agent then asks again.
        conv.send_message("write 3 facts into FACTS.txt")
        for _ in range(8):
            conv.run()
            if "finished" in str(conv.state.execution_status).lower():
                break
        check("confirm: accepting every action finishes the task",
              "finished" in str(conv.state.execution_status).lower(), conv.state.execution_status)
        check("confirm: approved actions ran", kinds(conv.state.events).count("ObservationEvent") >= 3)
        conv.set_confirmation_policy(NeverConfirm())
        conv.close()
    finally:
        server.stop()


def two_clients(cmd, llm_url):
    server = Server(cmd).start()
    try:
        ws = Workspace(host=server.url)
        first, second = [], []
        agent = get_default_agent(llm=make_llm(llm_url), cli_mode=True)
        a = Conversation(agent=agent, workspace=ws, callbacks=[first.append], delete_on_close=False)
        b = Conversation(agent=agent, workspace=ws, conversation_id=a.state.id, callbacks=[second.append],
                         delete_on_close=False)
        a.send_message("count to 3")
        a.run()

        def ids(events):
            return [e.id for e in events if type(e).__name__ in ("MessageEvent", "ActionEvent", "ObservationEvent")]
        same = wait_until(lambda: ids(first) == ids(second) and len(ids(first)) >= 9, 10)
        check("two clients: the same events in the same order", same, (len(ids(first)), len(ids(second))))
        b.close()
        a.close()
    finally:
        server.stop()


def restart(cmd, llm_url):
    server = Server(cmd, env={"OH_SECRET_KEY": "interop-secret-key-0123456789"}).start()
    try:
        ws = Workspace(host=server.url)
        agent = get_default_agent(llm=make_llm(llm_url), cli_mode=True)
        conv = Conversation(agent=agent, workspace=ws, delete_on_close=False)
        cid = conv.state.id
        conv.send_message("write 3 facts into FACTS.txt")
        conv.run()
        # full_state snapshots are never stored (as in the reference).
        before = [e.id for e in conv.state.events
                  if not (isinstance(e, ConversationStateUpdateEvent) and e.key == "full_state")]
        conv.close()
        check("restart: server exits 0", server.stop() == 0)
        secrets = open(os.path.join(server.cwd, "workspace", "conversations", cid.hex, "secrets.json")).read()
        check("restart: the key is stored only sealed", "interop-key" not in secrets and "ohs1:" in secrets)
        server.start()
        ws = Workspace(host=server.url)
        again = Conversation(agent=agent, workspace=ws, conversation_id=cid)
        after = [e.id for e in again.state.events]
        check("restart: every event is still there", set(before) <= set(after), len(set(before) - set(after)))
        info = httpx.get("%s/api/conversations/%s" % (server.url, cid)).json()
        check("restart: status preserved", info["execution_status"] == "finished", info["execution_status"])
        again.send_message("Great! Now delete that file.")
        again.run()
        check("restart: the second run works", "finished" in str(again.state.execution_status).lower())
        check("restart: FACTS.txt deleted", not os.path.exists(os.path.join(working_dir(ws, server), "FACTS.txt")))
        again.close()
    finally:
        server.stop()


def session_key(cmd, llm_url):
    server = Server(cmd, env={"SESSION_API_KEY": "interop-session-key"}).start()
    try:
        r = httpx.get(server.url + "/api/conversations/search")
        check("key: /api refuses without the key", r.status_code == 401 and r.json() == {"detail": "Unauthorized"}, r.text)
        check("key: /health stays open", httpx.get(server.url + "/health").status_code == 200)
        bad = Workspace(host=server.url).execute_command("pwd")
        check("key: workspace without the key fails", bad.exit_code == -1, bad)
        ws = Workspace(host=server.url, api_key="interop-session-key")
        check("key: workspace with the key works", ws.execute_command("pwd").exit_code == 0)
        received = []
        conv = Conversation(agent=get_default_agent(llm=make_llm(llm_url), cli_mode=True), workspace=ws,
                            callbacks=[received.append])
        conv.send_message("write 3 facts into FACTS.txt")
        conv.run()
        check("key: run over the authenticated socket finishes", "finished" in str(conv.state.execution_status).lower())
        check("key: events arrived over the socket", any(type(e).__name__ == "ActionEvent" for e in received))
        conv.close()
    finally:
        server.stop()


SCENARIOS = {"seed": seed_flow, "pause": pause_during_run, "confirm": confirmation,
             "two_clients": two_clients, "restart": restart, "session_key": session_key}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server-cmd", required=True)
    ap.add_argument("--only", choices=sorted(SCENARIOS))
    a = ap.parse_args()
    if os.path.exists(a.server_cmd.split()[0]):
        a.server_cmd = os.path.abspath(a.server_cmd.split()[0]) + " " + " ".join(a.server_cmd.split()[1:])
    llm_port = free_port()
    llm = subprocess.Popen([sys.executable, os.path.join(HERE, "fake_llm.py"), "--port", str(llm_port)])
    llm_url = "http://127.0.0.1:%d/v1" % llm_port
    try:
        wait_until(lambda: _up(llm_url), 10)
        for name, scenario in SCENARIOS.items():
            if a.only and name != a.only:
                continue
            print("-- %s" % name, flush=True)
            try:
                scenario(a.server_cmd, llm_url)
            except Exception as e:  # a crash is a failed check, not a silent pass
                check("%s: ran without exceptions" % name, False, repr(e))
    finally:
        llm.terminate()
        llm.wait()
    finish()


def _up(url):
    try:
        return httpx.get(url + "/models", timeout=1).status_code == 200
    except Exception:
        return False


if __name__ == "__main__":
    main()
