# Everything the platform needs, installed on first use. See README.md.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test lint messages system-deps clean

demo: $(STAMP)
	$(VENV)/bin/golos demo $(DEMO_ARGS)

test: $(STAMP)
	$(PY) -m pytest $(TEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy api ocr tally mobile_stub infra seeds

# The pages' messages: extract them from the templates (babel.cfg), then merge them
# into each language's catalogue; new messages arrive untranslated in ru and be.
messages: $(STAMP)
	$(VENV)/bin/pybabel -q extract -F babel.cfg -o infra/locale/golos.pot --project=Golos --version=1 --copyright-holder="Golos contributors" --msgid-bugs-address="the Golos issue tracker" --add-location=file --sort-by-file --no-wrap .
	$(VENV)/bin/pybabel -q update -i infra/locale/golos.pot -d infra/locale -D golos --no-wrap --ignore-obsolete

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
