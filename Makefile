# `make serve` and `make test` bootstrap .venv themselves (see README.md).
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: serve test bench lint openapi clean ohif fuzz

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $(STAMP)

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

serve: $(STAMP) ohif
	$(VENV)/bin/pharos serve $(if $(CONFIG),--config $(CONFIG))

test: $(STAMP) ohif
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(VENV)/bin/python benchmarks/ingest.py

lint: $(STAMP)
	$(VENV)/bin/ruff check app tests benchmarks scripts

# The hostile-input campaign (scripts/fuzz.py): >= 300 malformed DICOM files through
# REST, STOW-RS and C-STORE, then schemathesis over openapi/openapi.json for FUZZ_SECONDS
# against the same live server holding real data. Fails on any 5xx, schema violation,
# leaked instance or blob, or a server that stops answering. About five minutes.
FUZZ_SECONDS ?= 180
fuzz: $(STAMP)
	$(VENV)/bin/python scripts/fuzz.py --seconds $(FUZZ_SECONDS)

# openapi/openapi.json is what the app generates; tests/api/test_openapi.py fails when it
# drifts. Written through a temporary file so a failing app never truncates it.
openapi: $(STAMP)
	$(VENV)/bin/pharos openapi > openapi/openapi.json.tmp
	mv openapi/openapi.json.tmp openapi/openapi.json

clean:
	rm -rf $(VENV)
