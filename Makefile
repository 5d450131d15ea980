# The two commands README.md gives: `make dev` and `make test`.
# Both install what they need: a virtualenv with procon and its dev tools, and
# (on first use, cached in ~/.cache/procon) the control plane built from Go modules.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: dev down test lint unit integration crd clean mutation

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

## dev: start the local demo (control plane, CRD, ...) on this machine
dev: $(STAMP)
	$(BIN)/procon dev up

## down: stop the local demo
down: $(STAMP)
	$(BIN)/procon dev down

## test: lint, type-check, and run every test, integration tests on a real control plane included
test: lint
	$(BIN)/procon dev cluster build
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check operator tests hack/mutation.py
	$(BIN)/ruff format --check operator tests hack/mutation.py
	$(BIN)/mypy
	@out=$$(gofmt -l hack); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

integration: $(STAMP)
	$(BIN)/python -m pytest tests/integration

## mutation: mutation-test the pure core (mutmut) against its fast unit tests, one module at a time,
## niced; prints killed/survived/equivalent per module. MODULES="procon.redaction" narrows it.
mutation: $(STAMP)
	$(BIN)/python hack/mutation.py $(MODULES)

## crd: regenerate crds/, the chart's CRD template and its per-processor values, schema and env
crd: $(STAMP)
	$(BIN)/procon crd > crds/processorconnections.procon.dev.yaml
	$(BIN)/procon crd --helm > charts/procon/templates/crd.yaml
	$(BIN)/procon chart

.PHONY: e2e-kind
## e2e-kind: build the image, install the chart and the Stripe emulator on kind, wait for a Ready connection
## (prints why and exits 0 where Docker or kind is missing)
e2e-kind: $(STAMP)
	PROCON=$(BIN)/procon tests/e2e/kind/run.sh

clean:
	rm -rf $(VENV) .procon-dev .pytest_cache .mypy_cache .ruff_cache
