# The two commands of the README: `make demo` and `make test`. Each sets up .venv first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup browser java demo test test-engines test-fast ui lint bench clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH (or: make PYTHON=python3 ...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP)

# The real Airbyte connector the external-connector test runs (airbyte-source-faker, in a virtual
# environment of its own: its airbyte-cdk pins conflict with ours). Installed with the test tools, not
# inside the timed test run (~90 s of pip).
FAKER := $(VENV)/connectors/source-faker
$(FAKER)/bin/source-faker: | $(STAMP)
	@$(PYTHON) -m venv $(FAKER) && $(FAKER)/bin/python -m pip install --quiet 'airbyte-source-faker>=6,<8' \
	  || { rm -rf $(FAKER); echo "note: airbyte-source-faker not installed; its test will try again, or skip"; }

demo: $(STAMP)
	$(BIN)/recon demo

# Headless Chromium renders the report and the Dagster UI in the browser tests. Installed from Debian
# when missing and we may (root with apt-get); otherwise those tests say they were skipped and why.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	  && (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
	  || echo "note: chromium not installed; the browser tests will be skipped"; }

test: $(STAMP) $(FAKER)/bin/source-faker browser
	$(BIN)/ruff check .
	$(BIN)/pytest -n 2 --dist worksteal --durations=15 -m "not engines"   # two workers; heavy tests dealt to both first (tests/conftest.py)

# The `spark` extra (PySpark with Spark's jars, dbt-spark; ~450 MB) for the Spark engine's tests only.
SPARK_STAMP := $(VENV)/.installed-spark

$(SPARK_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev,spark]'
	@touch $(SPARK_STAMP)

# Spark needs Java 17: installed from Debian when missing and we may (root with apt-get); otherwise the
# Spark case of the engine tests says it was skipped and why.
java:
	@command -v java >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	  && (apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless >/dev/null) \
	  || echo "note: java not installed; the Spark engine test will be skipped"; }

# The same demo nights on every warehouse engine (DuckDB, PostgreSQL on a server started by the test, and
# Spark on a local session; Java 17 must be on PATH): equal diffs, canonical states and exceptions, day
# by day. Installs the `spark` extra first. CI runs it after `make test`.
test-engines: $(SPARK_STAMP) java
	$(BIN)/pytest -m engines -v --durations=5

test-fast: $(STAMP) $(FAKER)/bin/source-faker
	$(BIN)/pytest -n 2 --dist worksteal -m "not slow and not engines"

# The README's pictures (docs/images/): the report's first screen, `recon exceptions show`, the asset graph,
# taken with headless Chromium from a demo run into .recon/screenshots (run first when it has no report).
.PHONY: screenshots
screenshots: $(STAMP) browser
	$(BIN)/python docs/screenshots.py --out docs/images

ui: $(STAMP)
	$(BIN)/recon ui

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check . || true

clean:
	rm -rf .recon dbt_project/target dbt_project/logs
