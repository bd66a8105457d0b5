#!/usr/bin/env bash
# The package as users install it: build the wheel, install it with plain pip into a new virtual environment (the CPU
# build of torch first, as the README says), then ingest a small corpus and answer from it with the core alone.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
echo "wheel check in $root: build, install into a new venv, ingest, ask" >&2
.venv/bin/python -m pip wheel --quiet --no-deps --wheel-dir "$root/dist" .
"$PY" -m venv "$root/venv"
V="$root/venv/bin"
"$V/pip" install --quiet --upgrade pip
"$V/pip" install --quiet torch==2.13.0
"$V/pip" install --quiet "$root"/dist/citechat-*.whl
cd "$root"  # away from the checkout, so the installed package is what runs
mkdir corpus
printf 'Harbour of Varnel\n\nThe harbour of Varnel opened in 1874. Its first harbour master was Ilse Brandt.\n' \
  >corpus/harbour.txt
"$V/rag" --version
"$V/rag" ingest corpus --index ix --json >ingest.json
"$V/rag" ask "When did the harbour of Varnel open?" --index ix --json >answer.json
"$V/python" - <<'PYEOF'
import json

answer = json.load(open("answer.json"))
assert not answer["abstained"] and "1874" in answer["answer"], answer
assert answer["citations"][0]["source"] == "harbour.txt", answer
print("installed wheel answers:", answer["short_answer"])
PYEOF
# The core installs no web or LLM packages, and the web command says which extra it needs.
if "$V/python" -c "import gradio" 2>/dev/null; then echo "gradio was installed without the web extra" >&2; exit 1; fi
if "$V/rag" serve --index ix --no-ingest 2>serve.err; then echo "rag serve ran without the web extra" >&2; exit 1; fi
grep -q "citechat\[web\]" serve.err || { cat serve.err >&2; exit 1; }
echo "wheel check passed" >&2
