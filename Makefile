# One entry point for set-up, demo, tests and checks; CI (.ci/run) runs `make lint
# typecheck` and then `make test`, the README's test command.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test check lint typecheck bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# The CPU build of torch first: an unpinned torch would pull gigabytes of CUDA.
	$(BIN)/pip install --quiet "torch==2.13.0"
	$(BIN)/pip install --quiet -e ".[examples,ray,search,dev]"
	touch $(STAMP)

demo: install
	rm -rf demo-results
	$(BIN)/hyperjoule run src/hyperjoule/examples/quickstart/study.yaml --results-dir demo-results
	$(BIN)/hyperjoule runs --results-dir demo-results
	$(BIN)/hyperjoule report --results-dir demo-results -o demo-results/report.html
	@echo "report: $(CURDIR)/demo-results/report.html"

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: install
	$(BIN)/mypy

check: lint typecheck test

bench: install
	$(BIN)/python benchmarks/bench_overhead.py
	$(BIN)/python benchmarks/bench_meters.py
	$(BIN)/python benchmarks/bench_ray.py

clean:
	rm -rf $(VENV) demo-results .pytest_cache .mypy_cache .ruff_cache
