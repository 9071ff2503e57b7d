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
# area:folder:mapping file. The report's messages are in tally/; the layout's in
# api/ itself (babel-web.cfg: only its own templates and modules).
MESSAGE_AREAS := golos:tally:babel.cfg web:api:babel-web.cfg accounts:api/accounts:babel.cfg voters:api/voters:babel.cfg review:api/review:babel.cfg public:api/public:babel.cfg analysts:api/analysts:babel.cfg protocols:api/protocols:babel.cfg

messages: $(STAMP)
	@for pair in $(MESSAGE_AREAS); do \
	  area=$${pair%%:*}; rest=$${pair#*:}; folder=$${rest%%:*}; mapping=$${rest#*:}; \
	  $(VENV)/bin/pybabel -q extract -F $$mapping -o infra/locale/$$area.pot --project=Golos --version=1 --copyright-holder="Golos contributors" --msgid-bugs-address="the Golos issue tracker" --add-location=file --sort-by-file --no-wrap -k gettext -k pgettext:1c,2 $$folder || exit 1; \
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
