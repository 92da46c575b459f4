# Two commands do all set-up on a fresh machine (Python >= 3.10):
#   make demo   train LeNet-5 on the bundled MNIST and print the test accuracy
#   make test   run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test browser-deps browser-test bench lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,oracle,bench,mpi,interop-test,lint]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/numcnn train --model lenet5 --dataset mnist --out runs/lenet5-mnist

test: $(STAMP) browser-deps
	$(BIN)/python -m pytest -q

# What the browser test of the explain pages needs, best effort (a failure never fails the run;
# tests/test_explain_browser.py then skips with the reason): the selenium extra, and when run as
# root with apt-get, Debian's chromium and chromium-driver without recommends (about 220 MB of
# packages on a minimal Debian 12, under a minute; nothing when chromedriver is already there).
# BROWSER=no skips it all: make test BROWSER=no.
BROWSER ?= auto
APT_TIMEOUT ?= 300
CHROMEDRIVER ?= chromedriver

browser-deps: $(STAMP)
ifneq ($(BROWSER),no)
	-@$(BIN)/python -c 'import selenium' 2>/dev/null || $(BIN)/python -m pip install --quiet -e '.[browser-test]' \
	  || echo "make: selenium could not be installed: the browser test will skip"
	-@if command -v $(CHROMEDRIVER) >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "make: installing chromium and chromium-driver for the browser test (BROWSER=no skips)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  timeout $(APT_TIMEOUT) sh -c 'apt-get update -qq && apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=60 chromium chromium-driver' >/dev/null \
	    || echo "make: chromium could not be installed: the browser test will skip"; \
	else echo "make: no chromedriver (installed as root with apt-get): the browser test will skip"; fi
endif

# The explain pages in headless Chromium.
browser-test: browser-deps
	$(BIN)/python -m pytest -q tests/test_explain_browser.py

bench: $(STAMP)
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN)/python bench/run.py

# ruff, then mypy on src/numcnn ([tool.mypy] in pyproject.toml); both pinned in the lint extra
lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples
	$(BIN)/mypy

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis .mypy_cache .ruff_cache
