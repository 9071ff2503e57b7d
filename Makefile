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

# The pages' messages: extract each area's messages from its folder (babel.cfg) into
# its own catalogue (infra/locale/<lang>/LC_MESSAGES/<area>.po), then merge them into
# each language's file; new messages arrive untranslated in ru and be.
MESSAGE_AREAS := golos:tally/templates web:api/templates accounts:api/accounts voters:api/voters review:api/review public:api/public analysts:api/analysts

messages: $(STAMP)
	@for pair in $(MESSAGE_AREAS); do \
	  area=$${pair%%:*}; folder=$${pair#*:}; \
	  $(VENV)/bin/pybabel -q extract -F babel.cfg -o infra/locale/$$area.pot --project=Golos --version=1 --copyright-holder="Golos contributors" --msgid-bugs-address="the Golos issue tracker" --add-location=file --sort-by-file --no-wrap -k gettext $$folder || exit 1; \
	  for lang in ru be en; do \
	    if [ -f infra/locale/$$lang/LC_MESSAGES/$$area.po ]; then \
	      $(VENV)/bin/pybabel -q update -i infra/locale/$$area.pot -d infra/locale -D $$area -l $$lang --no-wrap --ignore-obsolete || exit 1; \
	    else \
	      $(VENV)/bin/pybabel -q init -i infra/locale/$$area.pot -d infra/locale -D $$area -l $$lang --no-wrap || exit 1; \
	    fi; \
	  done; \
	done

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
