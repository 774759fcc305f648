# yolo-pipeline: every target sets up what it needs on a fresh machine.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
JOBS ?= 2
export YOLO_OFFLINE := 1
export YOLO_CONFIG_DIR := $(CURDIR)/.venv/ultralytics-config
export MPLBACKEND := Agg

.PHONY: setup darknet darknet-ab browser test test-fast fuzz demo bench lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	mkdir -p $(YOLO_CONFIG_DIR)
	touch $(STAMP)

# The real darknet (pjreddie's fork, Debian package); tests that need it run when it is here.
darknet:
	@if command -v darknet >/dev/null; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && apt-get install -y -qq darknet >/dev/null) || echo "warning: apt could not install darknet"; \
	else echo "warning: darknet not installed (apt-get install -y darknet); darknet tests will fail"; fi

# AlexeyAB darknet, built CPU-only from the public-domain snapshot in ../shared (about 20 s on
# 2 cores) into a git-ignored folder; DARKNET_AB=/path/to/darknet uses another build instead.
AB_SRC ?= ../shared/darknet-alexeyab
AB_DIR := .darknet-ab
darknet-ab:
	@if [ -n "$${DARKNET_AB:-}" ]; then echo "using DARKNET_AB=$$DARKNET_AB"; \
	elif [ -x $(AB_DIR)/darknet ]; then :; \
	elif [ -d $(AB_SRC)/src ]; then rm -rf $(AB_DIR) && cp -r $(AB_SRC) $(AB_DIR) && chmod -R u+w $(AB_DIR) \
		&& $(MAKE) -s -C $(AB_DIR) -j$(JOBS) obj/ darknet >$(AB_DIR)/build.log 2>&1 \
		|| { echo "AlexeyAB build failed: see $(AB_DIR)/build.log"; exit 1; }; \
	else echo "note: no AlexeyAB source at $(AB_SRC); its tests will skip"; fi

# Debian's chromium and chromedriver, for the headless-browser test of `serve`.
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null) || echo "warning: apt could not install chromium"; \
	else echo "warning: chromium not installed (apt-get install -y chromium chromium-driver); the browser test will skip (and fail under CI)"; fi

lint: setup
	$(VENV)/bin/ruff check pipeline tests tools

test: setup darknet darknet-ab browser lint
	$(VENV)/bin/pytest -q -n $(JOBS) -m "not gpu" tests

test-fast: setup
	$(VENV)/bin/pytest -q -n $(JOBS) -m "not slow and not darknet and not gpu" tests

# Seeded mutations of the real fixtures and synth trees through every command (tools/fuzz.py);
# `make test` runs a fixed 70 of them.
FUZZ_CASES ?= 3000
FUZZ_SEED ?= 0
fuzz: setup
	$(PY) tools/fuzz.py --cases $(FUZZ_CASES) --seed $(FUZZ_SEED)

demo: setup darknet darknet-ab
	$(PY) tools/demo.py  # yolo-pipeline run cfg/demo.yaml (then: a rerun that skips, darknet, the rest)

bench: setup
	$(PY) tools/bench.py --out bench/results.md

# On a GPU machine (at most 8 min, one GPU): plain Ultralytics vs `train`, ETA errors, bench
# train 16..128, SIGKILL + resume, DDP with two GPUs -> work/gpu-check/gpu-check.{json,md}.
# Without a GPU: one line, exit 0. `tools/gpu_check.py --cpu-tiny` runs the same steps on the CPU.
.PHONY: gpu-check
gpu-check: setup
	$(PY) tools/gpu_check.py

clean:
	rm -rf demo bench/work .pytest_cache
