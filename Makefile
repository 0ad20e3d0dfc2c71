# make test: build .venv from scratch (if missing) with every workspace distribution installed
# editable plus the test tools, then run ruff, mypy and pytest.
# make demo: the main job on the embedded default store, offline.
# make dist: sdist + wheel of each distribution into dist/, checked by twine.
# make docs: the documentation site into site/ (mkdocs, strict: a broken link fails).
# make bench: every bench/*_bench.py at its default size, each figure beside its baseline
# (a raw driver, the smallest size, or the revision before), in one run.
# make bench-full: the scale bench at a million sessions (S3 10,000), 100,000 messages.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DISTS := ailib_core $(wildcard ailib_store_redis) $(wildcard ailib_store_sql) $(wildcard ailib_store_s3)
# What pip installs, editable: each distribution with the extras its tests need, plus the
# example third-party plugin from the docs.
SQL_EXTRAS := [postgresql,mysql]
INSTALL := -e "./ailib_core[agents,crypto]" \
	$(if $(wildcard ailib_store_redis),-e "./ailib_store_redis[fakeredis]") \
	$(if $(wildcard ailib_store_sql),-e "./ailib_store_sql$(SQL_EXTRAS)") \
	$(if $(wildcard ailib_store_s3),-e "./ailib_store_s3[mock]") \
	$(if $(wildcard docs/examples/ailib-store-jsonfile),-e ./docs/examples/ailib-store-jsonfile)
STAMP := $(VENV)/.installed

.PHONY: install test lint typecheck pytest demo clean bench bench-full dist docs

$(STAMP): pyproject.toml $(foreach d,$(DISTS),$(d)/pyproject.toml)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet --group dev $(INSTALL)
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy $(foreach d,$(DISTS),$(d)/src) docs/examples/ailib-store-jsonfile/src
	$(BIN)/mypy tests bench

pytest: $(STAMP)
	$(BIN)/pytest

test: lint typecheck pytest

demo: $(STAMP)
	$(BIN)/python -m ailib.demo

dist: $(STAMP)
	rm -rf dist
	for d in $(DISTS); do $(BIN)/python -m build --outdir dist $$d || exit 1; done
	$(BIN)/twine check --strict dist/*

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

bench: $(STAMP)
	for b in bench/*_bench.py; do echo "# $$b"; $(BIN)/python $$b || exit 1; done

bench-full: $(STAMP)
	$(BIN)/python bench/scale_bench.py --sizes 1000,100000,1000000 --s3-sizes 1000,10000 \
		--history 100000 --bulk-seed

clean:
	rm -rf $(VENV) dist site
