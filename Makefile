# ultrabones: `make run` builds the tiny simulated release, `make test` runs every check.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= 2
STAMP := $(VENV)/.setup-done
MODEL_STAMP := $(VENV)/.setup-model-done
# open3d's shared libraries, by soname, with the package that ships each on Debian/Ubuntu
# and on RHEL-like systems (soname:debian:rhel).
SYSTEM_LIBS := libGL.so.1:libgl1:mesa-libGL libEGL.so.1:libegl1:mesa-libEGL \
	libusb-1.0.so.0:libusb-1.0-0:libusb1 libgomp.so.1:libgomp1:libgomp
# Rules call `ultrabones ...`: put the venv first on PATH for Snakemake and its jobs.
export PATH := $(abspath $(BIN)):$(PATH)
SNAKEMAKE := $(BIN)/snakemake

.PHONY: setup setup-model system-libs browser run run-real run-raw report test lint pytest test-slurm clean

setup: $(STAMP)

# envs/constraints.txt pins every package (the snapshots' environment); pyproject.toml
# keeps the ranges a user's own environment may take.
CONSTRAINTS := envs/constraints.txt

$(STAMP): pyproject.toml $(CONSTRAINTS)
	@$(MAKE) --no-print-directory system-libs
	@$(MAKE) --no-print-directory browser
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e '.[workflow,dev]'
	$(BIN)/python -c "import open3d, zarr, xarray, numba, snakemake"
	touch $(STAMP)

# The model extra (torch's CPU build; issue 11): about 1 GB, under a minute from this
# machine's disk. `make pytest` needs it so the model tests run, not skip.
setup-model: $(MODEL_STAMP)

$(MODEL_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e '.[workflow,dev,model]'
	$(BIN)/python -c "import torch"
	touch $(MODEL_STAMP)

# open3d links these. Found with ldconfig (any distribution); when one is missing,
# install it if we may (root with apt-get or dnf), else name the packages.
system-libs:
	@found=$$(ldconfig -p 2>/dev/null); deb=""; rhel=""; \
	for spec in $(SYSTEM_LIBS); do \
	  IFS=: read -r so d r <<< "$$spec"; \
	  grep -q "$$so " <<< "$$found" || { deb="$$deb $$d"; rhel="$$rhel $$r"; }; \
	done; \
	if [ -z "$$deb" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing system libraries:$$deb"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$deb >/dev/null; \
	elif [ "$$(id -u)" = 0 ] && command -v dnf >/dev/null; then \
	  echo "installing system libraries:$$rhel"; dnf install -y -q $$rhel; \
	else \
	  echo "missing shared libraries for open3d; install them:"; \
	  echo "  Debian/Ubuntu: apt-get install$$deb"; \
	  echo "  RHEL/Rocky/Alma: dnf install$$rhel"; exit 1; \
	fi

# Headless Chromium for the audit pages' browser test (tests/test_workflow_run.py).
# Optional: without root and apt-get, say so and go on (the test then skips).
browser:
	@if command -v chromium >/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing chromium (audit page browser test)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
	    || echo "chromium not installed; the audit page browser test will skip"; \
	else \
	  echo "chromium missing (needs root with apt-get); the audit page browser test will skip"; \
	fi

# The whole workflow on the embedded default (the tiny simulated cohort); ARGS adds
# Snakemake options, e.g. ARGS="--configfile my.yaml".
run: setup
	$(SNAKEMAKE) --cores $(CORES) --rerun-incomplete $(ARGS)

# The same workflow on the real sample record in ../shared (config/real-sample.yaml).
run-real: setup
	$(SNAKEMAKE) --cores $(CORES) --rerun-incomplete --configfile config/real-sample.yaml

# Raw mode (config/raw-demo.yaml) on a cohort in the raw acquisition layout: the tiny
# simulated one, written once into results/raw-demo (the stamp marks it complete).
RAW_DEMO := results/raw-demo
run-raw: setup $(RAW_DEMO)/.simulated
	$(SNAKEMAKE) --cores $(CORES) --rerun-incomplete --configfile config/raw-demo.yaml

$(RAW_DEMO)/.simulated: | $(STAMP)
	$(BIN)/ultrabones simulate --preset tiny --seed 0 --out $(RAW_DEMO)
	touch $@

# Report of a finished run: results/report.zip (a zip, so the audit page folders are
# report items; unzip it and open report.html).
report: setup
	$(SNAKEMAKE) --cores 1 --report results/report.zip

lint: setup
	$(BIN)/ruff check workflow tests
	$(BIN)/ruff format --check workflow tests
	$(BIN)/snakefmt --check Snakefile rules
	$(SNAKEMAKE) --lint

# Two workers, one test file each at a time: the tiny workflow's run, the SLURM run
# and the unit tests overlap (pytest-xdist). Files in collection order, where
# tests/conftest.py puts the slow ones first (xdist's default orders them by size).
pytest: setup setup-model
	$(BIN)/pytest -q -n $(CORES) --dist loadfile --no-loadscope-reorder --durations=20

# The SLURM test alone (also part of `make test`; skips without root or with real SLURM).
test-slurm: setup
	$(BIN)/pytest -q -m slurm tests/test_slurm.py

test: lint pytest

clean:
	rm -rf results logs benchmarks .snakemake
