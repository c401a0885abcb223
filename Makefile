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

# The benchmark anchors (pip extra "bench"). curvlinops needs backpack-for-pytorch, which requires
# torchvision; the only torchvision for torch 2.13 on the index (0.28.0) is a CUDA build whose ops
# cannot load beside the CPU torch, and a torchvision that is installed but broken breaks every
# `import transformers` ("operator torchvision::nms does not exist"). No anchor uses torchvision
# (backpack imports it only in backpack.utils.examples), so it is removed after the install.
bench-deps: $(BIN)/saddlescope
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev,bench]"
	$(BIN)/python -m pip uninstall --quiet --yes torchvision

lint: $(BIN)/saddlescope
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(BIN)/saddlescope
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) results .pytest_cache .ruff_cache .hypothesis
