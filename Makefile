# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
OUT    ?= results

.PHONY: run demo test bench-deps lint format clean

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

# The benchmark anchors: the "bench" extra (PyHessian, hessian-eigenthings and what curvlinops
# needs), then curvlinops and backpack-for-pytorch without their dependencies: backpack requires
# torchvision, whose only build for torch 2.13 on the index is CUDA-only and breaks every
# `import transformers` beside the CPU torch ("operator torchvision::nms does not exist"). No
# anchor uses torchvision (backpack imports it only in backpack.utils.examples).
bench-deps: $(BIN)/saddlescope
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev,bench]"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps \
		"curvlinops-for-pytorch>=3.0.1" "backpack-for-pytorch>=1.7"

lint: $(BIN)/saddlescope
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(BIN)/saddlescope
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) results .pytest_cache .ruff_cache .hypothesis
