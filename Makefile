# mus_lab: the two commands are `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.mus_lab-installed
DEMO_OUT ?= demo_output
DEMO_SIZE ?= 256
# DEMO_FULL=1: the notebooks' own settings (more trees, epochs, seeds; about 15 min at 512 px).
DEMO_FULL ?=

.PHONY: demo test venv lint typecheck pytest lab dashboards chromium otb aria2 postgis mapserver services services-stop bench clean help

help:
	@echo "make demo   - set up .venv, build the sample scenario, run the main job (prints where)"
	@echo "make test   - set up .venv, run ruff, mypy and the whole test suite"
	@echo "make lab    - JupyterLab with the package's kernel and the notebooks"
	@echo "make dashboards - flood-risk (Voila) and land-cover (Panel) dashboards on 127.0.0.1"
	@echo "make chromium   - install Debian's Chromium for the browser tests (make test does it)"
	@echo "make postgis    - install Debian's PostgreSQL + PostGIS for the holdings (make test does it)"
	@echo "make mapserver  - install Debian's MapServer for the WMS/WCS (make test does it)"
	@echo "make services   - start PostgreSQL + pgstac, the STAC API, the WMS/WCS and the other services in $(SERVICES_DIR)/ (prints the URLs)"
	@echo "make services-stop - stop them"
	@echo "make bench  - run every benchmark in benchmarks/ (long; installs otb-bin and aria2)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv
	$(BIN)/uv pip install --python $(BIN)/python -e ".[all]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (mus_lab)" >/dev/null
	touch $@

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/mus-lab demo --out $(DEMO_OUT) --size $(DEMO_SIZE) $(if $(DEMO_FULL),--full,)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

# Two workers; a module (or a folder sharing one costly fixture) stays on one: conftest.py.
TEST_WORKERS ?= 2
pytest: $(STAMP) chromium postgis mapserver
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup

# Browser tests drive Debian's Chromium through playwright (never `playwright install`).
chromium:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update && apt-get install -y chromium; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
		sudo apt-get update && sudo apt-get install -y chromium; \
	else echo "Chromium is missing and cannot be installed here: the browser tests will be skipped."; fi

test: lint typecheck pytest

# Holdings in PostgreSQL + pgstac: the server and PostGIS from Debian packages, for the
# PostgreSQL major version installed (detected, never assumed); pgstac from pypgstac.
PG_MAJOR = ls /usr/lib/postgresql 2>/dev/null | grep -E '^[0-9]+$$' | sort -n | tail -1
postgis:
	@major=$$($(PG_MAJOR)); \
	if [ -n "$$major" ] && [ -f /usr/share/postgresql/$$major/extension/postgis.control ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then sudo=; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo=sudo; \
	else echo "PostgreSQL/PostGIS are missing and cannot be installed here: the holdings database tests will be skipped."; exit 0; fi; \
	$$sudo apt-get update && \
	if [ -z "$$major" ]; then $$sudo apt-get install -y postgresql && major=$$($(PG_MAJOR)); fi && \
	$$sudo apt-get install -y postgresql-$$major-postgis-3

# WMS 1.3.0 / WCS 2.0.1 of the products (mus_lab.services.ows): Debian's MapServer CGI.
mapserver:
	@if command -v mapserv >/dev/null 2>&1 || [ -x /usr/lib/cgi-bin/mapserv ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update && apt-get install -y cgi-mapserver mapserver-bin; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
		sudo apt-get update && sudo apt-get install -y cgi-mapserver mapserver-bin; \
	else echo "MapServer is missing and cannot be installed here: the WMS/WCS tests will be skipped."; fi

# `make services` starts the lab's own services on 127.0.0.1 (`mus-lab serve`,
# mus_lab/services/serve.py): PostgreSQL + pgstac (a cluster under $(SERVICES_DIR)/postgres,
# never the system cluster), the STAC API over it (its publishing token in
# $(SERVICES_DIR)/stac-api/token), the WMS/WCS of the product catalog $(OWS_CATALOG) (the
# demo's, once `make demo` has run; skipped without one) and every other registered service
# found; it prints their URLs. `make services-stop` stops them all.
SERVICES_DIR ?= .services
OWS_CATALOG ?= $(DEMO_CATALOG)
services: $(STAMP) postgis mapserver
	@$(BIN)/mus-lab serve start --dir $(SERVICES_DIR) $(if $(wildcard $(OWS_CATALOG)),--catalog $(OWS_CATALOG),)

services-stop: $(STAMP)
	@$(BIN)/mus-lab serve stop --dir $(SERVICES_DIR)

# Jupyter refuses to run as root unless told (containers, CI machines).
ROOT_FLAG = $(if $(filter 0,$(shell id -u)),--allow-root,)
# The notebooks use the demo's catalog when `make demo` has run, else MUS_LAB_CATALOG; without
# either they stop and say how to make one. apps/_jupyter/config: no news or update fetching.
DEMO_CATALOG = $(abspath $(DEMO_OUT))/scenario/catalog/catalog.json
JUPYTER_OFFLINE_CONFIG = $(abspath apps/_jupyter/config)

lab: $(STAMP)
	MUS_LAB_CATALOG=$(if $(wildcard $(DEMO_CATALOG)),$(DEMO_CATALOG),$$MUS_LAB_CATALOG) \
	JUPYTER_CONFIG_PATH=$(JUPYTER_OFFLINE_CONFIG)$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH} \
		$(BIN)/jupyter lab --ip 127.0.0.1 --notebook-dir notebooks $(ROOT_FLAG)

dashboards: $(STAMP)
	$(BIN)/mus-lab dashboards --catalog $(DEMO_CATALOG)

bench: $(STAMP) otb aria2 postgis
	@for b in load speckle ard classify fusion flood otb harvest holdings; do \
		echo "== benchmarks/bench_$$b.py"; $(BIN)/python benchmarks/bench_$$b.py || exit 1; done

otb:
	@if command -v otbcli_ImageClassifier >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update && apt-get install -y otb-bin; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
		sudo apt-get update && sudo apt-get install -y otb-bin; \
	else echo "otb-bin is missing and cannot be installed here: bench_otb.py will stop."; fi

aria2:
	@if command -v aria2c >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update && apt-get install -y aria2; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
		sudo apt-get update && sudo apt-get install -y aria2; \
	else echo "aria2 is missing and cannot be installed here: bench_harvest.py will stop."; fi

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache .mypy_cache .ruff_cache
