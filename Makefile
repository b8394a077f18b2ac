# The README's commands. Each target does its own set-up from a fresh clone.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo "$(HOME)/.local/bin/uv")
PROMPT ?= ERD for a blog with users, posts and comments

.PHONY: setup run test lint bench studio clean

# uv resolves and installs this dependency set in seconds (pip took over 17 minutes).
$(UV):
	python3 -m pip install --quiet --user uv || python3 -m pip install --quiet uv

setup: $(UV)
	$(UV) sync --frozen

run: setup
	$(UV) run modelyard ask "$(PROMPT)"

test: setup
	$(UV) run pytest -q

lint: setup
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy

bench: setup
	$(UV) run python bench/bench_router.py

studio: setup
	LANGGRAPH_CLI_NO_ANALYTICS=1 LANGSMITH_TRACING=false $(UV) run langgraph dev

clean:
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache
