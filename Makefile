# growth-sim: `make demo` runs the default scenario, `make test` runs the suite.
# Both create .venv on first use; nothing else needs installing by hand.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
SIM    := $(VENV)/bin/sim

.PHONY: setup setup-test demo test bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# Stamps are rebuilt when pyproject.toml changes, so a dependency added later is installed.
# setuptools warns about editable installs of a flat layout; the project's users see only its own lines.
$(VENV)/.stamp-run: pyproject.toml | $(PY)
	PYTHONWARNINGS=ignore $(PY) -m pip install -q -e .
	touch $@

$(VENV)/.stamp-test: pyproject.toml | $(PY)
	PYTHONWARNINGS=ignore $(PY) -m pip install -q -e '.[test]'
	touch $(VENV)/.stamp-run $@

setup: $(VENV)/.stamp-run
setup-test: $(VENV)/.stamp-test

demo: setup
	$(SIM) run

# After the suite, the regression check of the shipped experiments (experiments/baselines/; exit 1
# if the model's behaviour moved: record an intended change with `sim check --update`).
test: setup-test
	$(PY) -m pytest -q -n 2 --dist loadgroup
	$(SIM) check

bench: setup-test   # the test extras bring NDlib, which the benchmark compares with
	$(SIM) bench

clean:
	rm -rf $(VENV) .pytest_cache
