# terraseg: two commands do everything.
#   make demo   create .venv, install, run the whole pipeline on a generated sample (no downloads)
#   make test   install the dev extras and run the test suite (it also builds the docs with --strict)
#   make docs   build the documentation site into site/ (mkdocs, Material theme)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DEMO   ?= demo-output

.PHONY: demo test install install-dev clean bench docs

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip

# torch + torchvision come from the registry (the CUDA build, which also runs on CPU).
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install torch torchvision
	$(BIN)/pip install -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install -e '.[dev]'
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

demo: install
	$(BIN)/python -m terraseg.demo --out $(DEMO)

test: install-dev
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q

docs: install-dev
	$(BIN)/mkdocs build --strict --site-dir site

bench: install
	$(BIN)/python benchmarks/dubai.py

clean:
	rm -rf $(VENV) $(DEMO) test-output site
