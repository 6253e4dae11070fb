# mus_lab: the two commands are `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.mus_lab-installed
DEMO_OUT ?= demo_output
DEMO_SIZE ?= 512

.PHONY: demo test venv lint typecheck pytest lab bench clean help

help:
	@echo "make demo   - set up .venv, build the sample scenario, run the main job (prints where)"
	@echo "make test   - set up .venv, run ruff, mypy and the whole test suite"
	@echo "make lab    - JupyterLab with the package's kernel and the notebooks"
	@echo "make bench  - run the benchmarks in benchmarks/ (long)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv
	$(BIN)/uv pip install --python $(BIN)/python -e ".[all]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (mus_lab)" >/dev/null
	touch $@

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/mus-lab demo --out $(DEMO_OUT) --size $(DEMO_SIZE)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/python -m pytest

test: lint typecheck pytest

lab: $(STAMP)
	$(BIN)/jupyter lab --ip 127.0.0.1 --notebook-dir notebooks

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_load.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache .mypy_cache .ruff_cache
