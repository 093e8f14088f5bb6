# Protostar: `make run` serves the app with its three workers; `make test` runs the whole suite.
SHELL := /bin/bash
PY := .venv/bin/python
MANAGE := $(PY) manage.py

.PHONY: run test services stop status bootstrap migrate lint format bench bench-docs browser balancer cluster ocr clean

bootstrap:
	@./scripts/bootstrap.sh

# The servers, with the database migrated: `manage.py` commands work right after.
services: bootstrap
	@$(MANAGE) services up
	@$(MANAGE) migrate --no-input -v 0

stop:
	@$(MANAGE) services down

status:
	@$(MANAGE) services status

migrate: services
	@$(MANAGE) bootstrap

run: migrate ocr
	@echo "Protostar on http://127.0.0.1:8000/ (admin: /admin/). Ctrl-C stops the server and the workers."
	@.venv/bin/honcho start -f Procfile

browser:
	@./scripts/install-browser.sh

ocr:
	@./scripts/install-ocr.sh

balancer:
	@./scripts/install-balancer.sh

# Two web nodes behind haproxy, two chat and two knowledge workers, a summaries worker (CLUSTER_ARGS: --port, …).
cluster: migrate balancer
	@$(MANAGE) cluster $(CLUSTER_ARGS)

# The lint runs first, so CI (`make test`) fails on a style fault or a broken layer contract too.
test: lint browser ocr balancer
	@$(PY) -m pytest $(PYTEST_ARGS)

lint: bootstrap
	@.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/lint-imports --no-cache

format: bootstrap
	@.venv/bin/ruff check --fix . && .venv/bin/ruff format .

bench: migrate ocr
	@for script in bench/*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

# Rewrite the tables of docs/benchmarks.md from the stored runs in bench/results/*.json.
bench-docs: bootstrap
	@$(PY) bench/report.py

clean: stop
	rm -rf .data
