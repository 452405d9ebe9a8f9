#!/usr/bin/env bash
# The interop suite: the official OpenHands Python client (1.58.2) against our
# release binary, and our Rust client against the reference Python server.
#
#   bash tests/interop/run.sh
#
# Creates (once) a venv with python3.12 and the pinned reference packages in
# $OHS_REF_VENV (default ~/.cache/openhands-sync/ref-venv). Loopback only.
# Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
venv=${OHS_REF_VENV:-$HOME/.cache/openhands-sync/ref-venv}
pins=(openhands-sdk==1.58.2 openhands-tools==1.58.2 openhands-agent-server==1.58.2)

find_python312() {
  if command -v python3.12 >/dev/null 2>&1 && python3.12 -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then
    command -v python3.12; return
  fi
  for p in "$HOME"/.pyenv/versions/3.12*/bin/python3.12 /usr/local/bin/python3.12 /usr/bin/python3.12; do
    if [ -x "$p" ]; then echo "$p"; return; fi
  done
  return 1
}

if ! "$venv/bin/python" -c 'import openhands.sdk, openhands.tools, openhands.agent_server' 2>/dev/null; then
  py=$(find_python312) || { echo "interop: python3.12 not found" >&2; exit 1; }
  echo "interop: creating the reference venv in $venv with $py"
  "$py" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}"
fi
export LITELLM_LOCAL_MODEL_COST_MAP=True OPENHANDS_SUPPRESS_BANNER=1

cargo build --release --quiet --bin openhands-sync
bin="$root/target/release/openhands-sync"

status=0
echo "== official Python client -> openhands-sync (workspace)"
"$venv/bin/python" tests/interop/workspace_checks.py --server-cmd "$bin serve" || status=1

echo "== official Python client -> reference server (workspace, sanity check of the checks)"
"$venv/bin/python" tests/interop/workspace_checks.py --server-cmd "$venv/bin/python -m openhands.agent_server" --no-exit-check || status=1

echo "== official Python client -> openhands-sync (conversations)"
"$venv/bin/python" tests/interop/conversation_checks.py --server-cmd "$bin serve" || status=1

echo "== shared seed flow (../shared/conformance) -> openhands-sync"
shared=${OPENHANDS_SHARED:-$root/../shared}
if [ -f "$shared/conformance/seed_flow.py" ]; then
  llm_port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$venv/bin/python" "$shared/conformance/fake_llm.py" --port "$llm_port" >/dev/null 2>&1 &
  llm_pid=$!
  seed_port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  sleep 0.5
  "$venv/bin/python" "$shared/conformance/seed_flow.py" --server-cmd "$bin serve" --port "$seed_port" \
    --llm-url "http://127.0.0.1:$llm_port/v1" | grep -v '^\[SERVER\]' | grep -E '^(PASS|FAIL|[0-9]+ passed)' || status=1
  kill "$llm_pid" 2>/dev/null || true
else
  echo "interop: $shared/conformance/seed_flow.py not found"; status=1
fi

echo "== Rust clients -> reference server"
cargo build --release --quiet --example local_server
ref_dir=$(mktemp -d)
free_port() { "$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
llm_port=$(free_port)
"$venv/bin/python" tests/interop/fake_llm.py --port "$llm_port" >/dev/null 2>&1 &
llm_pid=$!
(cd "$ref_dir" && exec "$venv/bin/python" -m openhands.agent_server --host 127.0.0.1 --port "$port" >"$ref_dir/server.log" 2>&1) &
ref_pid=$!
cleanup() {
  kill "$ref_pid" "$llm_pid" 2>/dev/null || true
  wait "$ref_pid" "$llm_pid" 2>/dev/null || true
  rm -rf "$ref_dir"
}
trap cleanup EXIT
for _ in $(seq 1 300); do
  curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
  sleep 0.1
done
echo "-- RemoteWorkspace"
OHS_REFERENCE_URL="http://127.0.0.1:$port" OHS_REFERENCE_CWD="$ref_dir" \
  cargo test --release --quiet --test reference_server -- --ignored || status=1
echo "-- examples/local_server.rs"
if AGENT_SERVER_URL="http://127.0.0.1:$port" LLM_API_KEY=interop-key LLM_MODEL=openai/interop-model \
   LLM_BASE_URL="http://127.0.0.1:$llm_port/v1" target/release/examples/local_server >"$ref_dir/example.log" 2>&1 \
   && grep -q '^Done\.$' "$ref_dir/example.log" && grep -q '^EXAMPLE_COST: ' "$ref_dir/example.log"; then
  echo "PASS local_server example against the reference server"
  grep -E '^(Execution status|Number of events|EXAMPLE_COST)' "$ref_dir/example.log"
else
  echo "FAIL local_server example against the reference server"; tail -30 "$ref_dir/example.log"; status=1
fi

if [ "$status" -ne 0 ]; then echo "interop: FAILED"; else echo "interop: all passed"; fi
exit "$status"
