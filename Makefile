# Two commands do all set-up on a fresh machine (Python >= 3.10):
#   make demo   train LeNet-5 on the bundled MNIST and print the test accuracy
#   make test   run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test browser-test bench lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,oracle,bench,mpi,interop-test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/numcnn train --model lenet5 --dataset mnist --out runs/lenet5-mnist

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The explain pages in headless Chromium (Debian's chromium and chromium-driver, installed when
# run as root with apt-get available; the test skips with the reason where they are missing).
browser-test: $(STAMP)
	$(BIN)/python -m pip install --quiet 'selenium>=4.10'
	command -v chromedriver >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && apt-get install -y chromium chromium-driver; } || true
	$(BIN)/python -m pytest -q tests/test_explain_browser.py

bench: $(STAMP)
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN)/python bench/run.py

lint: $(STAMP)
	$(BIN)/python -m pip install --quiet ruff && $(BIN)/ruff check src tests bench

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis
