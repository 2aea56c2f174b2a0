# Entry points, each doing all of its own set-up on a fresh machine with Python 3.11:
#   make book     builds the site into _build/html
#   make test     lints, builds the site, runs the unit and browser tests, validates every notebook
#                 with nbval, then again under two stand-ins for other machines (.ci/matrix.py --ci);
#                 it installs Debian's chromium with apt-get if it is missing
#   make check    the same without the browser tests: any OS with Python 3.11, no root
#   make matrix   nbval under settings that stand for other machines (MATRIX=--full: all of them)
#   make execute NB=book/<chapter>.ipynb   re-runs a notebook, stores its outputs, no timestamps
#   make unit-jax the Keras layers' tests on the JAX backend, in their own .venv-jax
#   make translations  updates the Chinese edition's catalogues after the English prose changed
#   make lock     regenerates requirements.txt, requirements-dev.txt and requirements-jax.txt
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
NODE_STAMP := node_modules/.installed
JAX_VENV := .venv-jax
JAX_STAMP := $(JAX_VENV)/.installed
NBVAL := --nbval --nbval-current-env --nbval-sanitize-with book/sanitize.cfg
# the same arguments as .pre-commit-config.yaml (tests/test_notebooks_clean.py checks)
NBSTRIPOUT := --keep-output --keep-count --keep-id --extra-keys metadata.language_info.version
# the lock is for the readers' platform: CPython 3.11 on Linux x86-64 (Binder's)
LOCK := --python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
	--custom-compile-command "make lock" --quiet
MATRIX ?=

.PHONY: book test check lint unit unit-jax notebooks matrix browser browser-deps execute strip lock \
	benchmark replicate translations clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

$(DEV_STAMP): $(STAMP) requirements-dev.txt
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(DEV_STAMP)

$(JAX_STAMP): requirements-jax.txt pyproject.toml
	test -x $(JAX_VENV)/bin/python || $(PYTHON) -m venv $(JAX_VENV)
	$(JAX_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(JAX_VENV)/bin/python -m pip install --quiet -r requirements-jax.txt
	touch $(JAX_STAMP)

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

browser-deps: $(DEV_STAMP) $(NODE_STAMP)
	bash .ci/install-browser

# the English edition at the root of _build/html, the Chinese one (same notebooks, prose from
# locales/zh_CN/LC_MESSAGES) under _build/html/zh/
book: $(STAMP)
	$(BIN)/jupyter-book build . -W -n --keep-going
	$(BIN)/python _ext/zh_config.py _config.yml > _build/_config.zh.yml
	$(BIN)/jupyter-book build . --config _build/_config.zh.yml --path-output _build/zh \
		-W -n --keep-going
	rm -rf _build/html/zh && cp -r _build/zh/_build/html _build/html/zh

# after the English prose changed: extract its messages and update the Chinese catalogues (new
# messages empty, changed ones fuzzy: tests/test_translation.py fails until they are translated)
translations: $(DEV_STAMP)
	rm -rf _build/gettext
	$(BIN)/jupyter-book build . --builder custom --custom-builder gettext --path-output _build/gettext
	$(BIN)/sphinx-intl update -p _build/gettext/_build/gettext -l zh_CN -d locales

lint: $(DEV_STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/actionlint .github/workflows/*.yml
	$(BIN)/mypy src/selfattention

unit: $(DEV_STAMP)
	$(BIN)/pytest tests --ignore=tests/browser

# the layers are written in keras.ops: their equality with keras.layers.MultiHeadAttention and
# Keras's own test file, the KV cache and the position encodings also run on the JAX backend
unit-jax: $(JAX_STAMP)
	KERAS_BACKEND=jax $(JAX_VENV)/bin/pytest -q tests/test_layers.py tests/test_keras_suite.py \
		tests/test_layers_cache.py tests/test_layers_positions.py

notebooks: $(DEV_STAMP)
	$(BIN)/pytest $(NBVAL) book

matrix: $(DEV_STAMP)
	$(BIN)/python .ci/matrix.py $(MATRIX)

browser: browser-deps
	$(BIN)/pytest tests/browser

test: lint browser-deps book unit-jax
	$(BIN)/pytest tests $(NBVAL) book
	$(BIN)/python .ci/matrix.py --ci

check: lint book unit-jax
	$(BIN)/pytest tests --ignore=tests/browser $(NBVAL) book
	$(BIN)/python .ci/matrix.py --ci

execute: $(DEV_STAMP)
	$(if $(NB),,$(error name the notebook(s): make execute NB=book/04_math.ipynb))
	for nb in $(NB); do \
		TF_CPP_MIN_LOG_LEVEL=3 TF_ENABLE_ONEDNN_OPTS=0 $(BIN)/jupyter execute --inplace $$nb \
		&& $(BIN)/nbstripout $(NBSTRIPOUT) $$nb || exit 1; \
	done

strip: $(DEV_STAMP)
	$(BIN)/nbstripout $(NBSTRIPOUT) book/*.ipynb

lock: $(DEV_STAMP)
	$(BIN)/uv pip compile $(LOCK) requirements.in -o requirements.txt
	$(BIN)/uv pip compile $(LOCK) requirements-dev.in -o requirements-dev.txt
	$(BIN)/uv pip compile $(LOCK) requirements-jax.in -o requirements-jax.txt

benchmark: $(STAMP)
	$(BIN)/python benchmarks/run.py
	cd benchmarks && ../$(BIN)/python kv_cache_bench.py

# every experiment that trains something, over seeds 0-4, each seed in a fresh kernel: the
# chapter's own notebook is executed with its SEED changed (replication/README.md)
replicate: $(STAMP)
	$(BIN)/python replication/run.py
	$(BIN)/python replication/run.py --notebook book/05a_small_gpt.ipynb \
		--json book/figures/replication_05a.json --table replication/results_05a.md
	$(BIN)/python replication/run.py --notebook book/05b_induction_heads.ipynb \
		--json book/figures/replication_05b.json --table replication/results_05b.md
	$(BIN)/python replication/run.py --notebook book/05c_position_extrapolation.ipynb \
		--json book/figures/replication_05c.json --table replication/results_05c.md

clean:
	rm -rf _build screenshots
