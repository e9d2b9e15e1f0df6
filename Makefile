# ultrabones: `make run` builds the tiny simulated release, `make test` runs every check.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= 2
STAMP := $(VENV)/.setup-done
SYSTEM_LIBS := libgl1 libegl1 libusb-1.0-0 libgomp1
# Rules call `ultrabones ...`: put the venv first on PATH for Snakemake and its jobs.
export PATH := $(abspath $(BIN)):$(PATH)
SNAKEMAKE := $(BIN)/snakemake

.PHONY: setup system-libs run run-real report test lint pytest test-slurm clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@$(MAKE) --no-print-directory system-libs
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[workflow,dev]'
	$(BIN)/python -c "import open3d, zarr, xarray, numba, snakemake"
	touch $(STAMP)

# open3d links these; install what is missing when we may (root), else say what to install.
system-libs:
	@missing=""; for p in $(SYSTEM_LIBS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing system libraries:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "missing system libraries:$$missing (install them with your package manager)"; exit 1; \
	  fi; \
	fi

# The whole workflow on the embedded default (the tiny simulated cohort); ARGS adds
# Snakemake options, e.g. ARGS="--configfile my.yaml".
run: setup
	$(SNAKEMAKE) --cores $(CORES) --rerun-incomplete $(ARGS)

# The same workflow on the real sample record in ../shared (config/real-sample.yaml).
run-real: setup
	$(SNAKEMAKE) --cores $(CORES) --rerun-incomplete --configfile config/real-sample.yaml

# HTML report of a finished run: results/report.html.
report: setup
	$(SNAKEMAKE) --cores 1 --report results/report.html

lint: setup
	$(BIN)/ruff check workflow tests
	$(BIN)/ruff format --check workflow tests
	$(BIN)/snakefmt --check Snakefile rules
	$(SNAKEMAKE) --lint

pytest: setup
	$(BIN)/pytest -q

# The SLURM test alone (also part of `make test`; skips without root or with real SLURM).
test-slurm: setup
	$(BIN)/pytest -q -m slurm tests/test_slurm.py

test: lint pytest

clean:
	rm -rf results logs benchmarks .snakemake
