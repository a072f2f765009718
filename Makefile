# edgeq: two commands on a fresh Debian/Ubuntu machine.
#   make run   - install what is missing, then run the main job on the default model
#   make test  - install what is missing, then run the whole test suite

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
EDGEQ := $(VENV)/bin/edgeq
STAMP := $(VENV)/.edgeq-installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib qemu-system-arm \
                clang-format
PYTEST_WORKERS ?= 2
OUT ?= build/run

.PHONY: run test setup system-tools python-env lint format-c clean

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
	$(PY) -m pip install -q -e '.[data,test]'
	@# tflite-support's generated metadata reader is the independent check of the Android
	@# metadata; its pins (protobuf<4) conflict with TF 2.21, so it goes in without dependencies.
	$(PY) -m pip install -q --no-deps tflite-support==0.4.4
	@touch $@

run: setup
	$(EDGEQ) build --target cortex-m4

test: setup
	$(PY) -m ruff check edgeq tests benchmarks models
	$(PY) -m pytest -n $(PYTEST_WORKERS) --durations=15

lint: python-env
	$(PY) -m ruff check edgeq tests benchmarks models

# C style lives in .clang-format; this rewrites every C file of the repository in place.
format-c: system-tools
	git ls-files '*.c' '*.h' | xargs clang-format -i

clean:
	rm -rf build .pytest_cache
