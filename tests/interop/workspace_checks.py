#!/usr/bin/env python3
"""Workspace interop checks: the official OpenHands Python client
(openhands-sdk 1.58.2) drives an agent server through `Workspace(host=url)`.

  workspace_checks.py --server-cmd "target/release/openhands-sync serve"
  workspace_checks.py --server-url http://127.0.0.1:8000 --server-cwd /dir

With --server-cmd the server is started in a fresh temporary directory on a
free loopback port (adding --host/--port, with LOG_JSON=true) and stopped at
the end. Prints PASS/FAIL per check and ends with "N passed, M failed";
exits non-zero on any failure.
"""
import argparse
import os
import shlex
import subprocess
import time

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("OPENHANDS_SUPPRESS_BANNER", "1")

import httpx  # noqa: E402
from openhands.sdk import Workspace  # noqa: E402

from support import check, finish, free_port, temp_dir  # noqa: E402


def wait_healthy(url, proc, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=1.0).status_code == 200:
                return
        except Exception:
            pass
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("server exited with %s" % proc.returncode)
        time.sleep(0.05)
    raise RuntimeError("server not healthy after %ss" % seconds)


def run_checks(url, server_cwd, scratch):
    ws = Workspace(host=url)

    r = ws.execute_command("pwd")
    check("pwd exits 0", r.exit_code == 0, r)
    check("pwd prints the server's cwd", r.stdout.strip() == os.path.realpath(server_cwd), r.stdout)

    r = ws.execute_command("echo to-stderr >&2; exit 3")
    check("non-zero exit code is kept", r.exit_code == 3, r)
    check("stderr is returned", "to-stderr" in r.stderr, r)

    r = ws.execute_command("pwd", cwd=scratch)
    check("cwd is honoured", r.stdout.strip() == os.path.realpath(scratch), r)

    t0 = time.monotonic()
    r = ws.execute_command("sleep 30", timeout=2)
    elapsed = time.monotonic() - t0
    check("timeout gives exit code -1", r.exit_code == -1, r)
    check("timeout is reported", r.timeout_occurred, r)
    check("timeout returns promptly", elapsed < 10, elapsed)

    r = ws.execute_command("seq 1 20000")
    check("long output arrives whole", r.exit_code == 0 and r.stdout.splitlines()[-1] == "20000"
          and len(r.stdout.splitlines()) == 20000, len(r.stdout))

    payload = bytes(range(256)) * 1000
    src = os.path.join(scratch, "payload.bin")
    with open(src, "wb") as f:
        f.write(payload)
    dest = os.path.join(scratch, "remote", "nested", "copy.bin")
    up = ws.file_upload(src, dest)
    check("file upload succeeds", up.success and up.file_size == len(payload), up)
    back = os.path.join(scratch, "back.bin")
    down = ws.file_download(dest, back)
    check("file download succeeds", down.success, down)
    with open(back, "rb") as f:
        check("upload/download round trip is exact", f.read() == payload)
    bad = ws.file_download(os.path.join(scratch, "missing.bin"), os.path.join(scratch, "x"))
    check("missing file download fails cleanly", not bad.success, bad)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server-url")
    ap.add_argument("--server-cwd")
    ap.add_argument("--server-cmd")
    ap.add_argument("--no-exit-check", action="store_true",
                    help="do not require exit code 0 on SIGTERM (the reference exits -15)")
    args = ap.parse_args()

    scratch = temp_dir("ohs-interop-")
    proc = None
    try:
        if args.server_cmd:
            server_cwd = temp_dir("ohs-interop-server-")
            port = free_port()
            url = "http://127.0.0.1:%d" % port
            cmd = shlex.split(args.server_cmd) + ["--host", "127.0.0.1", "--port", str(port)]
            cmd[0] = os.path.abspath(cmd[0]) if os.path.exists(cmd[0]) else cmd[0]
            log = open(os.path.join(scratch, "server.log"), "wb")
            proc = subprocess.Popen(cmd, cwd=server_cwd, env=dict(os.environ, LOG_JSON="true"),
                                    stdout=log, stderr=subprocess.STDOUT)
            wait_healthy(url, proc)
        else:
            url, server_cwd = args.server_url.rstrip("/"), args.server_cwd
        run_checks(url, server_cwd, scratch)
    except Exception as e:  # a crash is a failed check, not a silent pass
        check("run without exceptions", False, repr(e))
    finally:
        if proc is not None:
            proc.terminate()
            try:
                code = proc.wait(timeout=15)
                if not args.no_exit_check:
                    check("server exits 0 on SIGTERM", code == 0, code)
            except subprocess.TimeoutExpired:
                proc.kill()
                check("server exits on SIGTERM", False, "still running after 15 s")
    finish()


if __name__ == "__main__":
    main()
