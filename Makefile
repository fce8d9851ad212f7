# The README's two commands:
#   make          set up (venv, pinned requirements, package) and run the main job:
#                 demo corpora, every notebook through papermill, the Jupyter Book
#   make test     set up, then lint (ruff) and run the tests (unit tests + smoke run of every
#                 notebook + book build)
#   make test-fast  lint and the tests not marked slow (no notebooks, book build or subprocesses)
#   make lint     ruff on the package, tests and benchmarks (configuration in pyproject.toml)
#
# Options: make PROFILE=paper | make ARGS="--iemocap-root /data/IEMOCAP_full_release"

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PROFILE ?= quick
ARGS   ?=
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed

.PHONY: all book lint test test-fast bench kernel lab clean distclean

all: book

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Python 3.11 is required (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

book: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=3 $(PY) -m ser_utils.pipeline --profile $(PROFILE) $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check ser_utils tests bench

test: lint
	TF_CPP_MIN_LOG_LEVEL=3 $(PY) -m pytest -ra $(ARGS)

test-fast: lint
	TF_CPP_MIN_LOG_LEVEL=3 $(PY) -m pytest -ra -m "not slow" $(ARGS)

bench: $(STAMP)
	$(PY) bench/extract_acoustic.py
	$(PY) bench/embed_text.py
	$(PY) bench/train_step.py
	$(PY) bench/train_grid.py
	$(PY) bench/cached_rerun.py
	$(PY) bench/precision_conclusions.py  # after `make`: float32 against the run's bfloat16
	$(PY) bench/msp_audio_vs_peer.py      # after `make`: the MSP demo's audio model vs its peer

# A Jupyter kernel for the venv, so JupyterLab runs the notebooks with the pinned packages.
kernel: $(STAMP)
	$(PY) -m ipykernel install --user --name ser-book --display-name "Python (ser-book)"

lab: kernel
	$(VENV)/bin/jupyter lab notebooks/

clean:
	rm -rf build results

distclean: clean
	rm -rf cache data/IEMOCAP_demo* data/MSP-PODCAST_demo* $(VENV)
