# tinynn: `make run` trains the main example, `make test` runs the test suite, `make bench`
# compares tinynn with Keras and PyTorch (`make bench-quick`: a few minutes).
# Each creates .venv on first use and reuses it afterwards. `make keras` adds TensorFlow, Keras 3
# and tf-keras (about 1 GB), after which `make test` also runs the tests against real Keras;
# `make extras` adds MPI, Dask and ONNX (the `distributed` and `onnx` extras) and their tests;
# `make graphviz` adds Graphviz for plot_model's images.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
MAIN   := examples/task3_cnn.py

.PHONY: run test data lint clean bench bench-quick keras extras graphviz

$(VENV)/.installed: setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[dev,h5]"
	touch $@

$(VENV)/.installed-keras: $(VENV)/.installed-dev
	$(PY) -m pip install --quiet -e ".[dev,keras]"
	touch $@

$(VENV)/.installed-extras: $(VENV)/.installed-dev
	$(PY) -m pip install --quiet -e ".[dev,distributed,onnx]"
	touch $@

$(VENV)/.installed-bench: $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[bench]"
	touch $@

# The Fashion-MNIST files: use a copy already present; else, on Debian as root, install the
# dataset-fashion-mnist package; else (or if that fails) download a verified copy into the cache.
data: $(VENV)/.installed
	@$(PY) -m tinynn.datasets.fashion_mnist --check 2>/dev/null || { \
	  if [ -f /etc/debian_version ] && [ "$$(id -u)" = 0 ]; then \
	    echo "Installing the Debian package dataset-fashion-mnist..."; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      dataset-fashion-mnist; } >/dev/null 2>&1 || echo "Not available; downloading instead."; \
	  fi; \
	  $(PY) -m tinynn.datasets.fashion_mnist --download; }

# Graphviz's dot draws tinynn.utils.plot_model's images: installed from Debian's package when
# running as root on Debian, else named with how to install it.
graphviz:
	@command -v dot >/dev/null 2>&1 || { \
	  if [ -f /etc/debian_version ] && [ "$$(id -u)" = 0 ]; then \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz; \
	    } >/dev/null 2>&1 || echo "Could not install graphviz."; \
	  else echo "plot_model images need Graphviz: apt-get install graphviz or brew install graphviz"; fi; }

run: $(VENV)/.installed data
	$(PY) $(MAIN)

test: $(VENV)/.installed-dev
	$(PY) -m pytest -q

keras: $(VENV)/.installed-keras

extras: $(VENV)/.installed-extras

bench: $(VENV)/.installed-bench data
	$(PY) benchmarks/run.py --profile

bench-quick: $(VENV)/.installed-bench data
	$(PY) benchmarks/run.py --quick

lint: $(VENV)/.installed-dev
	$(PY) -m ruff check tinynn tests examples benchmarks

clean:
	rm -rf $(VENV) out .pytest_cache .hypothesis
