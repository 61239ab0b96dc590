# pipepulse: `make demo` and `make test` work on a fresh machine with Python 3.11+.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=
## two pytest workers (the machines have 2 cores); each test file stays on one worker, so its
## module fixtures (servers, browsers) start once. PYTEST_XDIST= runs in one process.
PYTEST_XDIST ?= -n 2 --dist loadfile

.PHONY: install demo demo-data serve test test-aws-clock lint typecheck bench clean browser lock airflow

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "pipepulse needs Python 3.11 or newer (found %s)" % sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	@touch $(STAMP)

install: $(STAMP)

## demo: build 90 days of demo data in SQLite (data/demo/) and serve the dashboard on :8501
DEMO_CONFIG ?= examples/demo.toml
DEMO_PORT ?= 8501

demo: install
	$(BIN)/pipepulse --config $(DEMO_CONFIG) demo up --port $(DEMO_PORT)

demo-data: install
	$(BIN)/pipepulse --config $(DEMO_CONFIG) demo build

## airflow: a real Apache Airflow for the Airflow collector's tests and the demo's recording, in its
## own venv (.venv-airflow: its pins conflict with ours, SQLAlchemy first). Airflow's published
## constraints when reachable, else devkit/airflow-requirements.txt (the same install, frozen).
AIRFLOW_VERSION := 3.1.8
AIRFLOW_VENV    := .venv-airflow
AIRFLOW_STAMP   := $(AIRFLOW_VENV)/.installed-$(AIRFLOW_VERSION)

$(AIRFLOW_STAMP): devkit/airflow-requirements.txt
	$(PYTHON) -m venv $(AIRFLOW_VENV)
	@py=$$($(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
	url=https://raw.githubusercontent.com/apache/airflow/constraints-$(AIRFLOW_VERSION)/constraints-$$py.txt; \
	if curl -fsS --max-time 10 -o $(AIRFLOW_VENV)/constraints.txt $$url 2>/dev/null; then \
	  echo "airflow $(AIRFLOW_VERSION): Airflow's constraints for Python $$py"; \
	  $(AIRFLOW_VENV)/bin/python -m pip install -q "apache-airflow==$(AIRFLOW_VERSION)" -c $(AIRFLOW_VENV)/constraints.txt; \
	else \
	  echo "airflow $(AIRFLOW_VERSION): constraints not reachable; devkit/airflow-requirements.txt"; \
	  $(AIRFLOW_VENV)/bin/python -m pip install -q -r devkit/airflow-requirements.txt; \
	fi
	@touch $(AIRFLOW_STAMP)

airflow: $(AIRFLOW_STAMP)

## test: lint, types, then every test (tests/test_layers.py checks the layers of docs/architecture.md);
## PIPEPULSE_TEST_DBS=sqlite,postgresql runs the storage tests on both databases
test: install browser airflow
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest $(PYTEST_XDIST) $(PYTEST_ARGS)

## test-aws-clock: the tests marked aws_clock (they send times that AWS checks against its own
## clock) once more under Debian's faketime (but those marked same_clock_as_baseline: the fault
## table's rows other than its baseline and logs rows, whose times come from the same seed), from the last minute of the first year that ends more
## than 366 days from now, so the run also crosses a midnight, a month end and a year end. One
## offset for every process (a relative one: a test's subprocesses keep the same clock).
## PIPEPULSE_TEST_WALL_CLOCK_AFTER makes tests/test_clocks.py check that pytest and moto's server
## thread both see the faked date. Exit 5 (no test selected) fails, as any other failure.
test-aws-clock: install
	@command -v faketime >/dev/null || { echo "test-aws-clock needs Debian's faketime: apt-get install faketime"; exit 1; }
	@target=$$(date -u -d "$$(date -u -d '+366 days' +%Y)-12-31 23:59:00" +%s); \
	ahead=$$(( target - $$(date -u +%s) )); \
	echo "aws_clock tests under faketime +$${ahead}s: from $$(date -u -d @$$target '+%Y-%m-%d %H:%M:%S') UTC"; \
	PIPEPULSE_TEST_WALL_CLOCK_AFTER=$$(date -u -d @$$(( target - 60 )) +%Y-%m-%dT%H:%M:%S) \
	  faketime -f "+$$ahead" $(BIN)/python -m pytest -m "aws_clock and not same_clock_as_baseline" $(PYTEST_ARGS)

## browser: Debian's Chromium for the end-to-end tests (installed when missing and we are root)
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian chromium for the browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else \
	    echo "note: /usr/bin/chromium is missing; browser tests will be skipped (install Debian's chromium)"; \
	  fi; \
	fi

## lock: requirements.lock from requirements.txt: every runtime package pinned with its PyPI hashes
## (the Dockerfile installs it with --require-hashes). PyPI only: this machine's pip config may add
## local mirrors, whose files need not hash like PyPI's.
lock: install
	PIP_FIND_LINKS= PIP_CONFIG_FILE=/dev/null $(BIN)/pip-compile --quiet --generate-hashes --strip-extras \
	  --allow-unsafe --no-emit-index-url --index-url https://pypi.org/simple --output-file requirements.lock requirements.txt

lint: install
	$(BIN)/ruff check .

## typecheck: mypy over the floor (pipepulse/), store/ and insights/ (configured in pyproject.toml)
typecheck: install
	$(BIN)/mypy

## bench: the quick benchmarks (bench/README.md lists all of them)
bench: install
	$(BIN)/python -m bench.nab_eval --all
	$(BIN)/python -m bench.nab_loco --recorded
	$(BIN)/python -m bench.forecast_eval $(if $(wildcard data/demo/pipepulse.db),--demo-dir data/demo,)
	$(BIN)/python -m bench.bench_ce_requests
	$(BIN)/python -m bench.bench_cloudwatch_calls

clean:
	rm -rf $(VENV) data/demo .pytest_cache
