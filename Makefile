# platctl: the two commands a newcomer needs are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: install test demo schemas bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

## Run the test suite (needs redis-server on PATH; .ci/run installs it).
test: install
	$(PY) -m pytest -q -ra

## Validate the `vm` profile against a local sandbox, then boot a sample runtime.
demo: install
	$(PY) -m tests.sandbox demo

## Regenerate contract/*.schema.json from the models.
schemas: install
	$(PY) -m platctl.schema contract

## Benchmarks (issue 8; ratios, not tests): writes bench/results.md, pasted into the README.
bench: install
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) build dist *.egg-info
