# Two commands set everything up on a fresh machine: `make run` and `make test`.
# Needs only Python 3.12+ and make; with DATABASE_URL unset, an embedded PostgreSQL starts
# under .data/ (kept between runs).

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 2

# The first interpreter that is Python 3.12 or newer (override with `make PYTHON=...`).
PYTHON ?= $(shell for c in python3.12 python3.13 python3.14 python3 \
	$$HOME/.pyenv/versions/3.1[2-9]*/bin/python3; do \
	"$$c" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1 \
	&& { echo "$$c"; break; }; done)

.PHONY: run test install lint typecheck pytest migrate db-stop lock bench clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@if [ -z "$(PYTHON)" ]; then echo "Python 3.12 or newer is needed on PATH (python3.12, python3.13)."; exit 1; fi
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
	@touch $@

migrate: $(STAMP)
	$(PY) manage.py migrate --noinput

# granian, the production server (bench/RESULTS.md), with auto-reload on code changes, and
# beside it one background worker (manage.py db_worker, reloading too) for every queue, looking
# for tasks every 0.1 s when idle (bench/RESULTS.md, "Outbound webhooks"), and the webhook
# sender (manage.py run_webhooks). Both stop when the server does, however it ends.
run: migrate
	$(PY) manage.py seed_demo
	@echo "Dashboard: http://$(HOST):$(PORT)/dashboard/ (development sign-in at /dev/sign-in)"
	$(PY) manage.py db_worker --queue-name '*' --interval 0.1 --reload & worker=$$!; \
	$(PY) manage.py run_webhooks & sender=$$!; \
	trap 'kill $$worker $$sender 2>/dev/null; wait $$worker $$sender 2>/dev/null' EXIT; \
	$(PY) -m granian --interface wsgi nordkestrel.wsgi:application \
		--host $(HOST) --port $(PORT) --workers $(WORKERS) --blocking-threads 1 \
		--reload --reload-ignore-dirs .data --reload-ignore-dirs .venv \
		--reload-ignore-dirs staticfiles --reload-ignore-dirs bench

# Style, then the layers (the import contracts in pyproject.toml, ARCHITECTURE.md).
lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports

typecheck: $(STAMP)
	$(PY) -m mypy .

pytest: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

test: lint typecheck pytest

# Stop the embedded PostgreSQL (it otherwise keeps running between commands).
db-stop: $(STAMP)
	$(PY) -c 'from pathlib import Path; from nordkestrel import devdb; devdb.stop(Path(".data"))'

# Re-pin every transitive dependency after changing pyproject.toml.
lock: $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	$(PY) -m pip freeze --exclude-editable --exclude pip | LC_ALL=C sort -f > constraints.txt

bench: $(STAMP)
	$(PY) bench/servers.py

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
