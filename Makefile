# One-command set-up and checks for the course. `make lab` to learn, `make test` to verify.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=
LAB_ARGS ?=

.PHONY: setup lab test lint notebooks bench serve assistant ddp clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade uv
	$(BIN)/uv pip install --compile-bytecode --python $(BIN)/python -c constraints.txt -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name mmcourse --display-name "Python (mmcourse)"
	touch $(STAMP)

## setup: create .venv with the pinned torch triple (constraints.txt) and the course
setup: $(STAMP)

## lab: set up, then start JupyterLab on notebooks/
lab: setup
	$(BIN)/jupyter lab --notebook-dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

lint: setup
	$(BIN)/ruff check mmcourse tests tools bench

## test: set up, lint, unit tests and nbval over every notebook (two workers, one torch thread each:
## two processes with two threads each on two cores run many times slower than one thread each)
test: setup lint
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 --dist loadscope --nbval-lax --nbval-current-env \
		--junitxml=artifacts/junit.xml tests notebooks/[0-9][0-9]_*.ipynb $(PYTEST_ARGS)

## notebooks: re-execute every chapter in full mode and store the outputs
notebooks: setup
	$(BIN)/python tools/notebooks.py build notebooks/src/[0-9][0-9]_*.py

bench: setup
	$(BIN)/python bench/run.py

## serve: the chapter 12 digit service on http://127.0.0.1:8000 (loopback only; the model file comes
## from running notebooks/12_deployment.ipynb, or set MMCOURSE_MODEL=path/to/model.onnx)
serve: setup
	$(BIN)/python -m mmcourse.deploy.serve --host 127.0.0.1 --port 8000

## assistant: the chapter 13 customer-service assistant on http://127.0.0.1:8001 (loopback only; trains its
## item and mood models the first time, about 4 min, then cached; spoken numbers need notebook 11's recogniser)
assistant: setup
	$(BIN)/python -m mmcourse.assistant.app --host 127.0.0.1 --port 8001

## ddp: chapter 14's GPT trained with DistributedDataParallel on NPROC processes (gloo on CPU, nccl on GPUs),
## e.g. `make ddp NPROC=8 DDP_ARGS="--steps 2000 --batch 256 --amp"` on 8 GPUs
NPROC ?= 2
DDP_ARGS ?= --steps 50 --out artifacts/ddp.json
ddp: setup
	$(BIN)/torchrun --standalone --nproc_per_node=$(NPROC) -m mmcourse.distributed $(DDP_ARGS)

clean:
	rm -rf $(VENV) .cache .pytest_cache
