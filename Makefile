# cvpose_ros — the two commands: `make demo` and `make test`. Both bootstrap the environment (idempotent).
VENV ?= .venv
export CVPOSE_VENV := $(abspath $(VENV))

.PHONY: setup setup-dev demo test lint bench colcon clean

setup:
	@bash scripts/bootstrap.sh

setup-dev:
	@bash scripts/bootstrap.sh --dev

demo: setup
	@$(VENV)/bin/cvpose-demo

test: setup-dev
	@bash scripts/run_tests.sh

lint: setup-dev
	@$(VENV)/bin/ruff check .

bench: setup-dev
	@for b in bench/bench_*.py; do echo "== $$b"; $(VENV)/bin/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build install log demo_output runs
