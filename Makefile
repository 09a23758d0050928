# Alo Hotline. `make run` and `make test` install what they need on Debian 12 (as root).
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(VENV)/bin
STAMPS := .make
# sip-tester: SIPp callers and phones; sox + espeak-ng: prompts; flite: test speech;
# mmdebstrap: builds the Debian sid root with Asterisk 22 when no system Asterisk exists;
# chromium: the browser tests in tests/e2e drive it through Playwright (no browser is downloaded).
SYSTEM_PACKAGES := sip-tester sox espeak-ng flite mmdebstrap python3-venv ca-certificates chromium

.PHONY: help run test lint system venv clean

help:
	@echo "make run   - install, start Asterisk and the hotline on config/hotline.toml"
	@echo "make test  - install, run every test (real Asterisk and SIPp included)"
	@echo "make lint  - ruff and mypy"

$(STAMPS)/system: Makefile
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "as root, run: apt-get install $$missing" >&2; exit 1; fi; \
	  echo "installing system packages:" $$missing; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/venv: pyproject.toml $(STAMPS)/system
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

system: $(STAMPS)/system
venv: $(STAMPS)/venv

run: venv
	$(BIN)/hotline asterisk up
	$(BIN)/hotline db upgrade
	@$(BIN)/python -m hotline.cli banner
	exec $(BIN)/hotline run

test: venv
	$(BIN)/pytest -ra

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	-$(BIN)/hotline asterisk down
	rm -rf $(VENV) $(STAMPS) state
