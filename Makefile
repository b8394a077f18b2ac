# The README's commands. Each target does its own set-up from a fresh clone.
SHELL := /bin/bash
# uv on PATH, else the module pip put in the user site (no PATH change needed).
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
WORKER := validators/mermaid_worker
AXE := tests/browser/axe
HOST ?= 127.0.0.1
PORT ?= 8000
PROMPT ?= ERD for a blog with users, posts and comments

.PHONY: uv setup browser postgres run ask test lint bench studio clean

# uv resolves and installs this dependency set in seconds (pip took over 17 minutes).
uv:
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet --user uv || python3 -m pip install --quiet uv

# The Mermaid parser runs in Node: install the pinned npm packages from the lockfile.
$(WORKER)/node_modules/.package-lock.json: $(WORKER)/package-lock.json
	cd $(WORKER) && npm ci --no-audit --no-fund --loglevel=error

# `npm ci` bundles the worker too (build.mjs); an edit to its sources since then rebuilds it.
$(WORKER)/worker.bundle.js: $(WORKER)/node_modules/.package-lock.json $(WORKER)/worker.mjs $(WORKER)/errors.mjs $(WORKER)/build.mjs $(WORKER)/patches.mjs
	cd $(WORKER) && node build.mjs

# The browser tests' accessibility checker (tests/browser/test_a11y.py): axe-core, pinned the same way.
$(AXE)/node_modules/.package-lock.json: $(AXE)/package-lock.json
	cd $(AXE) && npm ci --no-audit --no-fund --loglevel=error

# Bytecode compiled once here: without it every CLI run compiles its imports again when the
# environment sets PYTHONDONTWRITEBYTECODE (this machine's does), ~0.4 s of `modelyard validate`.
setup: uv $(WORKER)/worker.bundle.js
	$(UV) sync --frozen --compile-bytecode
	$(UV) run python -m compileall -q $(dir $(wildcard */__init__.py))
	$(UV) run python -m ui.setup_frontend

# Browser tests drive Debian's Chromium; never a browser download.
browser:
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium)

# The PostgreSQL tests (MODELYARD_DATABASE_URL) start Debian's server in a temp dir: install it.
postgres:
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq --no-install-recommends postgresql)

run: setup
	$(UV) run chainlit run ui/app.py --host $(HOST) --port $(PORT)

ask: setup
	$(UV) run modelyard ask "$(PROMPT)"

test: setup browser postgres $(AXE)/node_modules/.package-lock.json
	$(UV) run pytest -q

lint: setup
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy

# Every row of the speed table (bench/results.json, bench/results.md); QUICK=1 for a smoke run.
bench: setup browser
	$(UV) run python -m bench.run_all $(if $(QUICK),--quick,)

studio: setup
	LANGGRAPH_CLI_NO_ANALYTICS=1 LANGSMITH_TRACING=false $(UV) run langgraph dev

clean:
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache $(WORKER)/node_modules $(AXE)/node_modules ui/build ui/public/vendor public
