# Kopa: `make demo` runs the product on SQLite; `make test` runs the whole suite.
# Every target sets up what it needs itself and is quick when nothing changed.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
RASA_VENV := .venv-rasa
PY := $(VENV)/bin/python
STAMPS := .stamps
PO_FILES := $(wildcard locales/*/LC_MESSAGES/messages.po)
MO_FILES := $(PO_FILES:.po=.mo)
PYTEST_ARGS ?=

.PHONY: help setup demo test lint train locales locales-update up bench clean chromium

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(STAMPS)/venv: requirements.lock pyproject.toml
	@mkdir -p $(STAMPS)
	@test -x $(PY) || $$(scripts/find-python 3.11) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	@touch $@

$(STAMPS)/venv-rasa: nlu/requirements.lock
	@mkdir -p $(STAMPS)
	@test -x $(RASA_VENV)/bin/python || $$(scripts/find-python 3.10) -m venv $(RASA_VENV)
	$(RASA_VENV)/bin/python -m pip install -q --upgrade pip
	$(RASA_VENV)/bin/python -m pip install -q -r nlu/requirements.lock
	@touch $@

# The browser tests drive Debian's Chromium (never a browser that Playwright downloads). The
# package list may be stale on a fresh machine: refresh it only when the install fails.
SUDO := $(shell test "$$(id -u)" -eq 0 || echo sudo)
$(STAMPS)/chromium:
	@mkdir -p $(STAMPS)
	@test -x /usr/bin/chromium \
	  || $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium \
	  || { $(SUDO) apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium; }
	/usr/bin/chromium --version
	@touch $@

chromium: $(STAMPS)/chromium ## install Debian's Chromium for the browser tests

locales/%/LC_MESSAGES/messages.mo: locales/%/LC_MESSAGES/messages.po $(STAMPS)/venv
	$(VENV)/bin/pybabel compile --use-fuzzy -d locales -D messages -l $*

locales: $(STAMPS)/venv $(MO_FILES) ## compile the message catalogs

locales-update: $(STAMPS)/venv ## extract messages into the .pot and merge them into every .po
	$(VENV)/bin/pybabel extract -F babel.cfg -k N_ -k NP_:1,2 --no-location --omit-header --sort-output -o locales/messages.pot i18n/messages
	$(VENV)/bin/pybabel update -i locales/messages.pot -d locales -D messages --no-fuzzy-matching --ignore-obsolete
	@$(MAKE) -s locales

setup: $(STAMPS)/venv $(STAMPS)/venv-rasa locales ## create both virtualenvs and compile catalogs

train: $(STAMPS)/venv $(STAMPS)/venv-rasa ## train the Rasa model (cached by a fingerprint of its inputs)
	$(PY) -m kopa.cli train

test: setup train $(STAMPS)/chromium ## run the whole test suite
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMPS)/venv ## ruff, mypy and the import contracts
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-logo

demo: setup train ## run Kopa on SQLite with a demo portfolio and chat with it
	$(PY) -m kopa.cli demo

bench: setup train ## run every benchmark and refresh bench/README.md
	$(PY) -m bench.run_all

clean: ## remove virtualenvs, models and local databases
	rm -rf $(VENV) $(RASA_VENV) $(STAMPS) nlu/models var
