# Two commands: `make run` (embedded default with demo data) and `make test` (the whole suite on
# PostgreSQL and Redis). Both create .venv and install what they need from pyproject.toml.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
SANDBOX_PORT ?= 8025

.PHONY: run test install install-test lint services browser migrate messages clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml tests/sandbox/cm_sdk/package-lock.json tests/browser/axe/package-lock.json | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[test]"
	@command -v npm >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null)
	npm ci --prefix tests/sandbox/cm_sdk --no-audit --no-fund --loglevel=error
	npm ci --prefix tests/browser/axe --no-audit --no-fund --loglevel=error
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

# The embedded default: SQLite and Celery's filesystem transport under var/, every process at once.
run: install
	DEBUG=1 $(BIN)/python manage.py migrate --noinput
	DEBUG=1 $(BIN)/python manage.py seed_demo
	DEBUG=1 PORT=$(PORT) SANDBOX_PORT=$(SANDBOX_PORT) scripts/run-embedded.sh

# PostgreSQL and Redis, started when they are down.
services:
	@pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
	@for i in $$(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && exit 0; sleep 1; done; echo "PostgreSQL or Redis did not start" >&2; exit 1

# Debian's chromium for the browser tests (Playwright cannot download its own here), and a Japanese
# font so that the screenshots they save are legible.
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)
	@fc-list :lang=ja 2>/dev/null | grep -q . || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-ipafont-gothic >/dev/null)

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache

test: install-test services browser lint
	$(BIN)/python manage.py makemigrations --check --dry-run --settings=tests.settings
	$(BIN)/pytest -p no:cacheprovider --create-db $(PYTEST_ARGS)

messages: install
	DEBUG=1 $(BIN)/python manage.py makemessages -l ja -l en --no-obsolete --ignore=.venv --ignore=var
	DEBUG=1 $(BIN)/python manage.py compilemessages --ignore=.venv

clean:
	rm -rf var/ $(VENV)
