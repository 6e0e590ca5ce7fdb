# Development entry points. `make demo` and `make test` work on a fresh machine: they create
# .venv and install the packages (editable, with the dev tools) on first use.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install lock demo test lint ci format bench bench-all chunks soak fault-soak fanout \
	gateway-bench metrics-bench status-bench

# The core and every extension package (adapters, history, tracing), editable, in one resolve.
# (The tracing packages must resolve together with google-adk, which caps OpenTelemetry.)
PACKAGES := -e ".[dev,bench,gateway]" -e "adapters/langgraph[postgres,test]" -e "adapters/adk[db]" \
	-e history/postgres -e tracing/langfuse -e tracing/phoenix
PYPROJECTS := pyproject.toml adapters/langgraph/pyproject.toml adapters/adk/pyproject.toml \
	history/postgres/pyproject.toml tracing/langfuse/pyproject.toml tracing/phoenix/pyproject.toml
# Every dependency at the version the suite last passed with (`make lock` refreshes it, on
# purpose); CI also runs the suite on the newest and the lowest redis-py and pydantic allowed.
CONSTRAINTS ?= constraints.txt
# pip says only what failed (errors), not the build backends' warnings on every editable
# install; `make install V=1` shows everything pip and setuptools print.
PIP_QUIET := $(if $(V),,-qq)
$(STAMP): $(PYPROJECTS) $(CONSTRAINTS)
	python3 -m venv $(VENV)
	$(PY) -m pip install $(PIP_QUIET) --upgrade pip
	$(PY) -m pip install $(PIP_QUIET) -c $(CONSTRAINTS) $(PACKAGES)
	touch $(STAMP)

install: $(STAMP)

# A fresh resolve of every package at the newest versions their ranges allow, written to
# constraints.txt; run `make test` on it before committing the new file.
lock:
	rm -rf .venv-lock
	python3 -m venv .venv-lock
	.venv-lock/bin/python -m pip install $(PIP_QUIET) --upgrade pip
	.venv-lock/bin/python -m pip install $(PIP_QUIET) $(PACKAGES)
	{ echo "# make lock: every dependency at the version the test suite passed with."; \
	  .venv-lock/bin/python -m pip freeze --exclude-editable; } > constraints.txt
	rm -rf .venv-lock

demo: $(STAMP)
	$(PY) -m by_framework demo

# The suite on $(TEST_PROCESSES) processes: its tests mostly wait on worker processes and Redis,
# so more processes than cores still shorten it (each process's servers take ports of their own,
# tests/support.py; the cluster tests share one process, tests/conftest.py).
TEST_PROCESSES ?= 4
test: $(STAMP)
	$(PY) -m pytest -q -n $(TEST_PROCESSES) --dist loadgroup

# mypy's settings and the packages it checks: pyproject.toml, [tool.mypy].
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# What CI runs (.ci/run): the services checked (started if absent), `make lint`, `make test`, then
# the suite on the newest redis-py and pydantic on Redis 6.2, and the core on the lowest versions.
ci:
	.ci/run

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

ARQ_VENV := .venv-arq
ARQ_STAMP := $(ARQ_VENV)/.installed
# arq pins redis-py < 6 (this project needs 8): a venv of its own, used only by the benchmarks.
$(ARQ_STAMP):
	python3 -m venv $(ARQ_VENV)
	$(ARQ_VENV)/bin/pip install -q "arq==0.28.0"
	touch $(ARQ_STAMP)

bench: $(STAMP) $(ARQ_STAMP)
	$(PY) bench/run.py

bench-all: $(STAMP) $(ARQ_STAMP)
	$(PY) bench/all.py

chunks: $(STAMP)
	$(PY) bench/chunks.py

soak: $(STAMP)
	$(PY) bench/soak.py

fault-soak: $(STAMP)
	$(PY) bench/fault_soak.py

fanout: $(STAMP)
	$(PY) bench/fanout.py

# Needs the [gateway] extra (FastAPI, uvicorn); docs/performance.md, "HTTP gateway".
gateway-bench: $(STAMP)
	$(PY) bench/gateway_fanout.py

# A worker's CPU per no-op task with its metrics port off and on, side by side (docs/metrics.md).
metrics-bench: $(STAMP)
	$(PY) bench/metrics_ab.py

# `status` on 100 agent types, 50 workers, 1M queued entries, on a redis-server of its own.
status-bench: $(STAMP)
	$(PY) bench/status.py
