# Two commands do all set-up on a fresh machine (Python >= 3.10):
#   make demo   train LeNet-5 on the bundled MNIST and print the test accuracy
#   make test   run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test bench lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,oracle,bench,mpi,interop-test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/numcnn train --model lenet5 --dataset mnist --out runs/lenet5-mnist

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN)/python bench/run.py

lint: $(STAMP)
	$(BIN)/python -m pip install --quiet ruff && $(BIN)/ruff check src tests bench

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis
