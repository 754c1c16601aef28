# The two commands of the README. Each creates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test benchmark docs clean

$(STAMP): pyproject.toml requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet torch==2.13.0
	$(VENV)/bin/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

demo: $(STAMP)  ## the main job: diffusion detectors vs PyOD baselines, no download needed
	$(VENV)/bin/python -m benchmarks.demo

test: $(STAMP)  ## the test-suite (CPU, a few minutes)
	$(VENV)/bin/python -m pytest -n 2 -q

benchmark: $(STAMP)  ## the full ADBench benchmark on ../shared/data (long)
	$(VENV)/bin/python -m benchmarks.tabular

docs: $(STAMP)
	$(VENV)/bin/python -m sphinx -b html doc doc/_build/html

clean:
	rm -rf $(VENV) doc/_build benchmarks/results
