# `make demo` and `make test` each set everything up from nothing, then run.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
POOL   := data/pools/synthetic
DEMO_N ?= 5000

.PHONY: setup demo test bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/curate pools build synthetic --n $(DEMO_N) --out $(POOL)
	$(BIN)/curate run pipelines/quickstart.yaml

test: setup
	$(BIN)/python -m pytest -q -p no:cacheprovider; status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; \
	exit $$status

bench: setup
	$(BIN)/curate bench ingest --n 100000

clean:
	rm -rf $(VENV) runs data *.egg-info
