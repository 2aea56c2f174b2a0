# Two entry points, each doing all of its own set-up on a fresh machine with Python 3.11:
#   make book   builds the site into _build/html
#   make test   lints, builds the site, runs the unit and browser tests, and validates every
#               notebook with nbval (it installs Debian's chromium with apt-get if it is missing)
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
NODE_STAMP := node_modules/.installed
NBVAL := --nbval --nbval-current-env --nbval-sanitize-with book/sanitize.cfg

.PHONY: book test lint unit notebooks browser browser-deps benchmark clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

$(DEV_STAMP): $(STAMP) requirements-dev.txt
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(DEV_STAMP)

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

browser-deps: $(DEV_STAMP) $(NODE_STAMP)
	bash .ci/install-browser

book: $(STAMP)
	$(BIN)/jupyter-book build . -W -n --keep-going

lint: $(DEV_STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

unit: $(DEV_STAMP)
	$(BIN)/pytest tests --ignore=tests/browser

notebooks: $(STAMP)
	$(BIN)/pytest $(NBVAL) book

browser: browser-deps
	$(BIN)/pytest tests/browser

test: lint browser-deps book
	$(BIN)/pytest tests $(NBVAL) book

benchmark: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf _build screenshots
