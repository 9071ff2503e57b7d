# Everything the platform needs, installed on first use. See README.md.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench system-deps clean

demo: $(STAMP)
	$(VENV)/bin/golos demo $(DEMO_ARGS)

test: $(STAMP)
	$(PY) -m pytest $(TEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy api ocr tally mobile_stub infra seeds

system-deps:
	@bash infra/system-deps.sh

$(STAMP): pyproject.toml constraints.txt infra/system-deps.sh
	@bash infra/system-deps.sh
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

clean:
	-$(VENV)/bin/golos db stop
	rm -rf $(VENV) .golos out
