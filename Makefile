# Every target sets up .venv on first use: torch 2.13.0 (the CPU build here) first, then gankit.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_VERSION := 2.13.0

.PHONY: setup demo test test-fast lint benchmark clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==$(TORCH_VERSION)
	$(BIN)/python -m pip install --quiet -e '.[dev,onnx,tensorboard,sweep]'
	touch $@

demo: setup  # a second `make demo` draws from the run the first trained (remove runs/demo to train it again)
	@if [ -f runs/demo/generator.safetensors ]; then \
		echo "runs/demo already holds the trained demo: sampling from it (rm -r runs/demo to train it again)"; \
	else $(BIN)/gankit train dcgan-digits --out runs/demo $(if $(filter true,$(CI)),--quiet,); fi
	$(BIN)/gankit sample runs/demo --n 100 --seed 0 --out runs/demo/sample-seed0.png

test: setup lint
	$(BIN)/python -m pytest -q

test-fast: setup  # the suite without the tests marked slow (torchrun, long trainings): for quick iterations
	$(BIN)/python -m pytest -q -m "not slow"

lint: setup
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/ruff check src tests benchmarks

benchmark: setup
	$(BIN)/python benchmarks/throughput.py

clean:
	rm -rf $(VENV) runs build src/*.egg-info
