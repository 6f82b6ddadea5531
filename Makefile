# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create .venv when it is missing. torch is installed first, pinned to the
# CPU build, so the package's torch range is already satisfied and pip never
# pulls a CUDA build.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TORCH := torch==2.13.0
# Notebooks and the demo read this to pick small sizes in CI.
export RNNGRAPH_SMALL ?= 1

.PHONY: venv demo test lint unit notebooks bench peers clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e ".[test,plot]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

venv: $(VENV)/.installed

demo: venv
	RNNGRAPH_SMALL=0 $(PY) -m rnngraph.demo

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

unit: venv
	$(PY) -m pytest -q

notebooks: venv
	$(PY) -m pytest -q --nbmake notebooks

# The tests that check results against references, with the native kernels switched off:
# the package must be correct without them (on a platform without a C compiler, say).
TORCH_ONLY = tests/test_differential.py tests/test_semantics.py tests/test_open_core.py \
	tests/test_readout_training.py

# ruff, the torch-only run, then the unit tests and the notebooks in one pytest run, so
# the run ends with pytest's summary line.
test: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	RNNGRAPH_NATIVE=0 $(PY) -m pytest -q -p no:cacheprovider $(TORCH_ONLY)
	$(PY) -m pytest -q tests notebooks --nbmake

# The side-by-side benchmark suite (rnngraph against every installed peer; run
# `make peers` first). Writes benchmarks/results/bench.md and bench.json.
bench: venv
	$(PY) -m benchmarks

# Peer libraries for side-by-side benchmarks, each in its own venv under .peers/
# (never in the project's environment).
PEERS ?= reservoirpy rectipy snntorch norse brian2 nest
peers:
	bash benchmarks/peers/setup.sh $(PEERS)

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
