# The two commands of the README. Each creates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast benchmark docs gpu-check clean

$(STAMP): pyproject.toml requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet torch==2.13.0
	$(VENV)/bin/python -m pip install --quiet -r requirements-dev.txt
# Test-only reference for the VUS metrics (tests/test_vus_reference.py); --no-deps
# because its declared dependencies pin numpy<2 and pull a CUDA torch.
	$(VENV)/bin/python -m pip install --quiet --no-deps tsb-ad==1.5
	touch $(STAMP)

demo: $(STAMP)  ## the main job: diffusion detectors vs PyOD baselines, no download needed
	$(VENV)/bin/python -m benchmarks.demo

test: $(STAMP)  ## the test-suite (CPU, a few minutes)
	$(VENV)/bin/python -m pytest -n 2 -q

# The markers are registered in pyproject.toml; `make test` still runs every test.
test-fast: $(STAMP)  ## the quick loop: the suite less its slow, cluster and benchmark tests (about a minute)
	$(VENV)/bin/python -m pytest -n 2 -q -m "not slow and not cluster and not benchmark"

benchmark: $(STAMP)  ## the full ADBench benchmark on ../shared/data (long)
	$(VENV)/bin/python -m benchmarks.tabular

# On a machine with a GPU and a CUDA build of PyTorch (not the CPU build the
# venv above pins): the CUDA tests, then the CPU-vs-CUDA table. GPU_PYTHON is
# the interpreter that holds that PyTorch, pyod and scikit-learn.
GPU_PYTHON ?= python3
gpu-check:
	PYTHONPATH=$(CURDIR) $(GPU_PYTHON) -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/core
	PYTHONPATH=$(CURDIR) $(GPU_PYTHON) -m benchmarks.gpu

docs: $(STAMP)
	$(VENV)/bin/python -m sphinx -b html doc doc/_build/html

clean:
	rm -rf $(VENV) doc/_build benchmarks/results
