# Two commands set everything up on a fresh Debian machine with Python 3.11+:
#   make studio   install into .venv (when needed) and open the studio
#   make test     install into .venv (when needed), chromium included, and run every test
#   make demo     the studio without a GPU: a demo backend that draws placeholder images
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TESTSTAMP := $(VENV)/.installed-test

.PHONY: studio backend demo test bench clean chromium

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Re-install whenever pyproject.toml changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(TESTSTAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP) $@

studio: $(STAMP)
	$(BIN)/ryla-studio $(ARGS)

backend: $(STAMP)
	$(BIN)/ryla-backend $(ARGS)

# The ComfyUI test double (placeholder models and images), a backend over it and the studio
# with a banner saying so: every tab works without a GPU (tests/demo.py).
demo: $(TESTSTAMP)
	$(BIN)/python -m tests.demo $(ARGS)

# Debian's chromium drives the browser tests; Playwright's own browser download
# cannot work on a machine without internet.
chromium:
	@command -v chromium >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && $$SUDO apt-get install -y -q chromium; }

# pytest exits 5 when no test ran, and make fails on any non-zero exit.
test: $(TESTSTAMP) chromium
	$(BIN)/python -m pytest $(ARGS)

bench: $(TESTSTAMP)
	$(BIN)/python -m benchmarks $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
