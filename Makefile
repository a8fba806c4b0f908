# Two commands do everything on a fresh machine:
#   make run   - create .venv, install hiralign with the GUI extra, open the GUI on the embedded demo
#   make test  - create .venv, install hiralign with every extra the tests use, run the whole test suite
# Any python3 >= 3.11 works; `make run PYTHON=python3.13` picks another one.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch first, pinned to the CPU wheel that lies on disk here; the project's own range
# (torch>=2.4) is then satisfied and pip pulls no multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
# Extras per target (see pyproject.toml): the core itself needs no Qt, diffusers or pyinstaller.
RUN_EXTRAS ?= gui
TEST_EXTRAS ?= test,gui,unclip,docs
# The libraries Qt's xcb platform plugin and libQt6Gui need on a minimal Debian/Ubuntu.
QT_SYSTEM_LIBS := libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-randr0 \
	libxcb-render-util0 libxcb-shape0 libxcb-xkb1 libxkbcommon-x11-0 libegl1 libgl1 fontconfig
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup setup-test check-python system-deps run demo test test-fast bundle docs bench clean

check-python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "make: $(PYTHON) not found; install Python >= 3.11 or pass PYTHON=/path/to/python3.11"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || { \
		echo "make: hiralign needs Python >= 3.11, but $(PYTHON) is $$($(PYTHON) -c 'import platform; print(platform.python_version())'); pass PYTHON=python3.11 (or newer)"; exit 1; }

# One stamp per set of extras, so `make run` after `make test` installs nothing again.
$(VENV)/.installed-%: pyproject.toml | check-python
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[$(subst +,$(comma),$*)]"
	touch $@

comma := ,
RUN_STAMP := $(VENV)/.installed-$(subst $(comma),+,$(RUN_EXTRAS))
TEST_STAMP := $(VENV)/.installed-$(subst $(comma),+,$(TEST_EXTRAS))

setup: $(RUN_STAMP)

setup-test: $(TEST_STAMP)

# Qt's system libraries, where apt-get exists (Debian/Ubuntu); elsewhere it says what to get.
system-deps:
	@if command -v apt-get >/dev/null 2>&1; then \
		$(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends $(QT_SYSTEM_LIBS); \
	else \
		echo "make system-deps: no apt-get here; install your system's packages for: $(QT_SYSTEM_LIBS)"; \
	fi

run: setup
	$(PY) -m app

demo: setup
	$(VENV)/bin/hiralign demo

test: setup-test
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest

test-fast: setup-test
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -m "not slow"

bundle: $(VENV)/.installed-gui+bundle
	$(VENV)/bin/pyinstaller --noconfirm hiralign.spec

docs: $(VENV)/.installed-docs
	$(PY) docs/gen_cli_reference.py && $(VENV)/bin/mkdocs build --strict

# Quick mode of every benchmark script (checks they run; full runs: each script's --help).
bench: $(VENV)/.installed-gui+bench
	$(PY) benchmarks/run_all.py

clean:
	rm -rf build dist site .pytest_cache
