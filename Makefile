# `make serve` and `make test` bootstrap .venv themselves (see README.md).
PYTHON ?= python3
VENV := .venv
# Two stamps: `make serve` installs the project only (what running the archive needs);
# `make test` (and lint, bench, openapi, fuzz) adds the test tools on top of it.
SERVE_STAMP := $(VENV)/.installed-serve
TEST_STAMP := $(VENV)/.installed-test

.PHONY: serve test bench lint typecheck openapi clean ohif fuzz

$(SERVE_STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e .
	touch $(SERVE_STAMP)

$(TEST_STAMP): $(SERVE_STAMP)
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $(TEST_STAMP)

# The OHIF viewer served at /ohif/: fetched from the npm registry into .ohif/dist by
# scripts/fetch_ohif.py (which pins the version); done again only when that script
# changes. Without npm the server runs without the viewer; a failed fetch only warns,
# except in CI.
OHIF_DIR ?= .ohif/dist

ohif: $(OHIF_DIR)/.pharos-ohif.json

$(OHIF_DIR)/.pharos-ohif.json: scripts/fetch_ohif.py
	@if ! command -v npm >/dev/null 2>&1; then \
	  echo "npm not found: skipping the OHIF viewer (/ohif/ will answer 404)"; \
	else $(PYTHON) scripts/fetch_ohif.py --dest $(OHIF_DIR) \
	  || { echo "warning: could not fetch the OHIF viewer"; [ -z "$$CI" ]; }; fi

serve: $(SERVE_STAMP) ohif
	$(VENV)/bin/pharos serve $(if $(CONFIG),--config $(CONFIG))

# The suite runs on TEST_WORKERS processes (pytest-xdist), one test file per process at a
# time (--dist loadfile: a module's shared server stays in one process). Most tests wait
# on servers they start (a live server per module or per test, each on its own ports,
# storage and database), so one more process than cores keeps the cores busy.
# `make test TEST_WORKERS=0` runs it in one process.
TEST_WORKERS ?= $(shell $(PYTHON) -c 'import os; print(min(8, (os.cpu_count() or 1) + 1))')
test: $(TEST_STAMP) ohif
	$(VENV)/bin/python -m pytest $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile) $(PYTEST_ARGS)

bench: $(TEST_STAMP)
	$(VENV)/bin/python benchmarks/writes.py

# ruff, then mypy. The import rules (SQL only in app/index, FastAPI only in app/api, no
# upward imports or cycles: scripts/layers.py) are tests/unit/test_architecture.py.
lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check app tests benchmarks scripts
	$(MAKE) typecheck

# mypy --strict on every layer up to the services ([tool.mypy] in pyproject.toml).
typecheck: $(TEST_STAMP)
	$(VENV)/bin/python -m mypy

# The hostile-input campaign (scripts/fuzz.py): >= 300 malformed DICOM files through
# REST, STOW-RS and C-STORE, then schemathesis over openapi/openapi.json for FUZZ_SECONDS
# against the same live server holding real data. Fails on any 5xx, schema violation,
# leaked instance or blob, or a server that stops answering. About five minutes.
FUZZ_SECONDS ?= 180
fuzz: $(TEST_STAMP)
	$(VENV)/bin/python scripts/fuzz.py --seconds $(FUZZ_SECONDS)

# openapi/openapi.json is what the app generates; tests/api/test_openapi.py fails when it
# drifts. Written through a temporary file so a failing app never truncates it.
openapi: $(TEST_STAMP)
	$(VENV)/bin/pharos openapi > openapi/openapi.json.tmp
	mv openapi/openapi.json.tmp openapi/openapi.json

clean:
	rm -rf $(VENV)
