# Two entry points, both self-contained on a fresh machine:
#   make demo   create the environment and run the offline demo
#   make test   create the environment with test extras and run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test bench clean browser

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

demo: $(VENV)/.installed
	$(BIN)/graymatter demo --out graymatter-demo

# The report tests open the HTML reports in Debian's headless Chromium.
browser:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "note: Chromium is not installed (as root: apt-get install chromium);" \
	         "browser tests are skipped outside CI"; \
	  fi; \
	fi

# pytest exits 5 when no test ran; make propagates it, so an empty run fails.
test: $(VENV)/.installed-test browser
	$(BIN)/python -m pytest

bench: $(VENV)/.installed-test
	$(BIN)/python -m pip install --quiet -e ".[test,bench]"
	$(BIN)/python benchmarks/bench_glm.py

clean:
	rm -rf $(VENV) graymatter-demo
