# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
OUT    ?= results

.PHONY: run demo test lint format clean

$(BIN)/saddlescope: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
	touch $@

run: $(BIN)/saddlescope
	$(BIN)/saddlescope survey --out $(OUT)/survey

demo: $(BIN)/saddlescope
	$(BIN)/saddlescope demo --out $(OUT)/demo

test: $(BIN)/saddlescope
	$(BIN)/python -m pytest

lint: $(BIN)/saddlescope
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(BIN)/saddlescope
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) results .pytest_cache .ruff_cache .hypothesis
