# edgeq: two commands on a fresh Debian/Ubuntu machine.
#   make run   - install what is missing, then run the main job on the default model
#   make test  - install what is missing, then run the whole test suite
#                (needs ../shared beside the checkout; EDGEQ_NO_SHARED=1 skips those tests)
#   make mutation - mutation score of the core modules (tools/mutation.py; slow, not in `test`)

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
EDGEQ := $(VENV)/bin/edgeq
STAMP := $(VENV)/.edgeq-installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := gcc g++ gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib qemu-system-arm \
                clang-format cmake
PYTEST_WORKERS ?= 2
OUT ?= build/run

.PHONY: run test check-shared setup system-tools python-env lint format-c clean mutation

setup: system-tools python-env

system-tools:
	@missing=""; \
	for p in $(APT_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "edgeq: installing system packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

python-env: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[data,test,mutation]'
	@# tflite-support's generated metadata reader is the independent check of the Android
	@# metadata; its pins (protobuf<4) conflict with TF 2.21, so it goes in without dependencies.
	$(PY) -m pip install -q --no-deps tflite-support==0.4.4
	@touch $@

run: setup
	$(EDGEQ) build --target cortex-m4

# CI always has ../shared (third-party models, TFLite Micro): without it ~70 checks would skip.
check-shared:
	@[ -n "$$EDGEQ_NO_SHARED" ] || [ -d "$${EDGEQ_SHARED_MODELS:-../shared/models}/tflm" ] || \
	  { echo "edgeq: ../shared/models not found beside the checkout; put ../shared there or set EDGEQ_NO_SHARED=1 to skip the third-party-model tests" >&2; exit 1; }

test: check-shared setup
	$(PY) -m ruff check edgeq tests benchmarks models tools
	$(PY) -m pytest -n $(PYTEST_WORKERS) --durations=15

# mutmut over the core Python modules (each with its fast tests) plus hand-written C mutants;
# figures go in docs/testing.md. MODULES="protocol fit" runs a subset.
mutation: check-shared setup
	$(PY) tools/mutation.py $(MODULES)

lint: python-env
	$(PY) -m ruff check edgeq tests benchmarks models tools

# C style lives in .clang-format; this rewrites every C file of the repository in place.
format-c: system-tools
	git ls-files '*.c' '*.h' | xargs clang-format -i

clean:
	rm -rf build .pytest_cache
