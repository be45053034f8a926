# `make serve` and `make test` bootstrap .venv themselves (see README.md).
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: serve test bench lint openapi clean

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $(STAMP)

serve: $(STAMP)
	$(VENV)/bin/pharos serve $(if $(CONFIG),--config $(CONFIG))

test: $(STAMP)
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(VENV)/bin/python benchmarks/ingest.py

lint: $(STAMP)
	$(VENV)/bin/ruff check app tests benchmarks

openapi: $(STAMP)
	$(VENV)/bin/pharos openapi > openapi/openapi.json

clean:
	rm -rf $(VENV)
