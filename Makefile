# Two commands do everything on a fresh machine:
#   make run   - create .venv, install hiralign, open the GUI on the embedded demo
#   make test  - create .venv, install hiralign with test extras, run the whole test suite
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
# torch first, pinned to the CPU wheel that lies on disk here; the project's own range
# (torch>=2.4) is then satisfied and pip pulls no multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: setup run demo test test-fast bundle docs bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[test,docs,bundle]"
	touch $(STAMP)

run: setup
	$(PY) -m app

demo: setup
	$(VENV)/bin/hiralign demo

test: setup
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest

test-fast: setup
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -m "not slow"

bundle: setup
	$(VENV)/bin/pyinstaller --noconfirm hiralign.spec

docs: setup
	$(PY) docs/gen_cli_reference.py && $(VENV)/bin/mkdocs build --strict

bench: setup
	$(PY) benchmarks/run_all.py

clean:
	rm -rf build dist site .pytest_cache
