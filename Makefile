# accessd: the two commands a person needs are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed

.PHONY: demo test lint bench soak clean system-deps messages

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

system-deps:
	@scripts/install-system-deps

demo: $(STAMP)
	$(PY) -m demo.run

test: $(STAMP) system-deps
	$(PY) -m ruff check .
	$(PY) -m mypy accessd firmware_bridge hardware_sim web demo
	$(VENV)/bin/lint-imports
	$(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy accessd firmware_bridge hardware_sim web demo
	$(VENV)/bin/lint-imports

# The panel's message catalogue (docs/translations.md): extract every marked text, merge it into
# each language's .po, compile the .mo the panel reads (committed: a clone needs no compile).
BABEL = $(VENV)/bin/pybabel
MESSAGES = web/translations
messages: $(STAMP)
	$(BABEL) extract -F babel.cfg -k _l -k N_ -k NavLink:1 --no-location --sort-output -w 100 \
		--project accessd --copyright-holder "accessd" -o $(MESSAGES)/messages.pot .
	$(BABEL) update -i $(MESSAGES)/messages.pot -d $(MESSAGES) --no-fuzzy-matching --ignore-obsolete \
		-w 100
	$(BABEL) compile -d $(MESSAGES) --statistics

bench: $(STAMP)
	$(PY) -m tests.bench $(ARGS)

soak: $(STAMP)
	ACCESSD_SOAK=1 $(PY) -m pytest tests/daemon/test_soak.py $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
