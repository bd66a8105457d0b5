#!/usr/bin/env bash
# The repository must carry everything its tests need: clone the committed tree into an empty temporary folder
# (nothing beside it) and collect the whole suite plus run the fast tier there, with this checkout's environment.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="$PWD/.venv/bin/python"
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
git clone --quiet --no-hardlinks "$PWD" "$root/citechat"
cd "$root/citechat"
export PYTHONPATH="$PWD"  # this clone's rag/ and tests/, not the editable install's
"$PY" -c 'import pathlib, rag, sys; sys.exit(0 if pathlib.Path(rag.__file__).is_relative_to(pathlib.Path.cwd()) else f"rag imported from {rag.__file__}")'
echo "fresh clone in $root/citechat: collecting the suite, then the fast tier" >&2
"$PY" -m pytest --collect-only -q -p no:cacheprovider >/dev/null
"$PY" -m pytest -q -p no:cacheprovider -m "not slow and not browser and not chroma_server"
