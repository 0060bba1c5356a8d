# The two commands of the README. Both install what they need first (scripts/setup.sh).
PY ?= python3
export KERAS_BACKEND ?= jax

.PHONY: setup demo test lint

setup:
	bash scripts/setup.sh

# Compile the bundled example to Verilog and prove it bit-exact in Verilator.
demo: setup
	bash scripts/demo.sh

# The test suite (what CI runs). Pytest's exit code 5 ("no tests ran") fails the build.
test: setup
	$(PY) -m ruff check hgqc tests benchmarks examples
	$(PY) -m pytest -q -ra

lint:
	$(PY) -m ruff check hgqc tests benchmarks examples
