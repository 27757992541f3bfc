# The two set-up commands: `make demo` and `make test`. On a fresh Debian machine
# (as root) each installs what it needs first: Debian packages, a .venv, the package.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
APT_PACKAGES := ffmpeg espeak-ng postgresql mariadb-server chromium
STAMP := $(VENV)/.installed
# Test processes: a test file runs whole in one of them (module fixtures are shared); 1 runs the suite in order.
# Tests marked `serial` (wall-clock bounds on the service's responsiveness) run afterwards, alone.
TEST_WORKERS ?= 2

.PHONY: all test demo lint typecheck unit deps system-deps bench clean

all: test

system-deps:
	@missing=""; \
	for cmd in ffmpeg:ffmpeg ffprobe:ffmpeg espeak-ng:espeak-ng mariadbd:mariadb-server chromium:chromium; do \
	  command -v $${cmd%%:*} >/dev/null 2>&1 || [ -x /usr/sbin/$${cmd%%:*} ] || missing="$$missing $${cmd##*:}"; \
	done; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else \
	    echo "missing Debian packages:$$missing (run as root, or: sudo apt-get install$$missing)"; exit 1; \
	  fi; \
	fi

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

deps: system-deps $(STAMP)

lint: deps
	$(BIN)/ruff check transcriptarr tests benchmarks
	$(BIN)/ruff format --check transcriptarr tests benchmarks

typecheck: deps
	$(BIN)/mypy

test: deps lint typecheck
	$(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile -m 'not serial'
	$(BIN)/python -m pytest -q -p no:cacheprovider -m serial

unit: deps
	$(BIN)/python -m pytest -q tests/unit

demo: deps
	$(BIN)/python -m transcriptarr.demo

bench: deps
	$(BIN)/python benchmarks/queue_bench.py --backend sqlite

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache demo-library
