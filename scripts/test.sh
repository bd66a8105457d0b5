#!/usr/bin/env bash
# Full test suite: lint and types, Debian's Chromium for browser tests and redis-server for the shared rate limits
# (the tests start their own), a Chroma server for the server-mode tests, pytest, then the fast tier again from a
# fresh clone with nothing beside it (the repository carries its test data), then the built wheel installed with
# plain pip into a new virtual environment.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

$BIN/ruff check rag tests bench app.py
$BIN/mypy rag
$BIN/lint-imports

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing Debian chromium for the browser tests" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    echo "warning: chromium missing and not root; browser tests will fail" >&2
  fi
fi

if ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing Debian redis-server for the shared rate-limit tests" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  else
    echo "warning: redis-server missing and not root; the shared rate-limit tests will fail" >&2
  fi
fi

export ANONYMIZED_TELEMETRY=False GRADIO_ANALYTICS_ENABLED=False HF_HUB_OFFLINE=1
chroma_dir=$(mktemp -d)
port=$($BIN/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
$BIN/chroma run --path "$chroma_dir" --host 127.0.0.1 --port "$port" >"$chroma_dir.log" 2>&1 &
chroma_pid=$!
trap 'kill $chroma_pid 2>/dev/null || true; rm -rf "$chroma_dir" "$chroma_dir.log"' EXIT
for _ in $(seq 1 60); do
  curl -sf "http://127.0.0.1:$port/api/v2/heartbeat" >/dev/null 2>&1 && break
  sleep 0.5
done
export RAG_TEST_CHROMA_URL="127.0.0.1:$port"

$BIN/python -m pytest "$@"
unset RAG_TEST_CHROMA_URL
bash scripts/test-clone.sh
bash scripts/test-wheel.sh
