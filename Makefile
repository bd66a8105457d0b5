# The two commands of the README: `make run` (install + serve the app) and `make test` (install + lint + full suite +
# the fast tier in a fresh clone + the built wheel in a new virtual environment).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast install lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# The CPU build of torch first: any later plain "torch" requirement is then already met.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[web,llm,test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/python app.py

test: $(STAMP)
	bash scripts/test.sh

# The edit loop: no browser, no Chroma server, nothing marked slow.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not browser and not chroma_server" $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check rag tests bench app.py
	$(BIN)/mypy rag

bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[web,llm,test,bench]'
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .rag-index test-artifacts
