# Treuepunkt: `make run` starts the product with demo data, `make test` runs the tests.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# Test processes (pytest-xdist); each gets its own test database on the throwaway server.
TEST_WORKERS ?= 2

.PHONY: run test install lint bench messages clean

$(STAMP): pyproject.toml requirements.lock
	@set -e; python=$$(scripts/find-python.sh); \
	  [ -x $(PY) ] || "$$python" -m venv $(VENV); \
	  $(PY) -m pip install -q --upgrade pip; \
	  $(PY) -m pip install -q -c requirements.lock -r <($(PY) scripts/deps.py dev)
	@touch $(STAMP)

install: $(STAMP)

# Translations: edit locale/*/LC_MESSAGES/django.po, then `make messages`. The compiled .mo files are
# not committed: `make run` compiles them (tests run on the English source texts either way).
messages: $(STAMP)
	$(PY) manage.py makemessages -l de -l en --ignore=.venv --ignore=var --no-obsolete
	$(PY) manage.py compilemessages --ignore=.venv

# PostgreSQL 15 and Redis run under var/ (scripts/localstack.sh, data kept between runs); Ctrl-C
# stops web, worker, beat and both servers (a server left by a killed run is reused next time).
run: install
	@scripts/system-deps.sh
	@mkdir -p var/mail
	@trap 'scripts/localstack.sh stop' EXIT; trap 'exit 130' INT TERM; \
	  scripts/localstack.sh start || exit 1; \
	  if command -v msgfmt >/dev/null; then $(PY) manage.py compilemessages --ignore=.venv -v0; \
	  else echo "gettext (msgfmt) missing: the UI stays in English; apt-get install gettext"; fi; \
	  $(PY) manage.py migrate --noinput -v0 && \
	  $(PY) manage.py seed_demo && \
	  echo "Starting web (http://127.0.0.1:8000), Celery worker and beat. Ctrl-C stops them and the servers." && \
	  $(VENV)/bin/honcho start -f Procfile || true

test: install
	@scripts/system-deps.sh
	$(PY) scripts/testdb.py -- $(VENV)/bin/pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: install
	@scripts/system-deps.sh bench
	$(PY) bench/run.py

clean:
	-@scripts/localstack.sh stop
	rm -rf var/postgres var/redis var/mail var/sms
