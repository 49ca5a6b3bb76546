# `make demo` and `make test` each set everything up from nothing, then run.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
VENDOR := data/vendor
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# what the embedded real pools are built from (see docs/pools.md), WordNet for MetaCLIP metadata,
# and the libraries OpenCV (used by the text_in_image detector) links against
OS_PACKAGES  := tuxpaint-stamps-default openclipart-png openclipart-svg iso-flags-png-320x240 \
                iso-codes dataset-fashion-mnist libcairo2 wordnet-base libgl1 libglib2.0-0 \
                chromium
NPM_PACKAGES := emoji-datasource-google@16.0.0 openmoji@17.0.0

.PHONY: setup os-packages vendor demo eval-sets benchmark test bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

os-packages:
	@missing=$$(for p in $(OS_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing OS packages: $$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

$(VENDOR)/.done:
	@command -v npm >/dev/null || { echo "npm is needed to fetch $(NPM_PACKAGES): apt-get install npm" >&2; exit 1; }
	mkdir -p $(VENDOR)
	cd $(VENDOR) && npm pack --silent $(NPM_PACKAGES)
	touch $@

vendor: $(VENDOR)/.done

setup: $(STAMP) os-packages vendor

demo: setup
	$(BIN)/curate pools build web --out data/pools/web
	test -f data/metaclip/metadata.json || $(BIN)/curate metadata build --out data/metaclip/metadata.json
	$(BIN)/curate pools build tuxpaint --out data/pools/tuxpaint
	$(BIN)/curate train-dfn --data data/pools/tuxpaint --out data/dfn
	for s in flags-eval tuxpaint-retrieval; do $(BIN)/curate pools build $$s --out data/eval/$$s || exit 1; done
	$(BIN)/curate run pipelines/quickstart.yaml

eval-sets: setup
	for s in fashion-mnist-test mnist-5k flags-eval tuxpaint-retrieval; do \
		$(BIN)/curate pools build $$s --out data/eval/$$s || exit 1; done

benchmark: setup  # curation strategies compared at equal compute (under an hour on 2 cores)
	$(BIN)/curate benchmark pipelines/benchmark-embedded.yaml

test: setup
	$(BIN)/python -m pytest -q -p no:cacheprovider; status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; \
	exit $$status

bench: setup
	$(BIN)/curate bench ingest --n 100000
	$(BIN)/curate bench download --n 20000

clean:  # keeps data/vendor: fetching it again needs the npm registry
	rm -rf $(VENV) runs data/pools data/eval data/bench data/metaclip data/dfn data/dfn-fashion *.egg-info
