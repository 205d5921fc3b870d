# make run   set up .venv (if missing or stale) and start the app
# make test  set up .venv with the dev tools and run lint + the whole test suite
# make bench print the benchmark tables

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
APP    := $(VENV)/.app-installed
DEV    := $(VENV)/.dev-installed

.PHONY: run test lint format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(APP): requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check -r requirements.txt
	touch $@

$(DEV): requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check -r requirements-dev.txt
	touch $(APP) $@

run: $(APP)
	$(BIN)/python -m streamlit run streamlit_app.py

test: $(DEV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

lint: $(DEV)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(DEV)
	$(BIN)/python -m bench.samplers
	$(BIN)/python -m bench.zoo
	$(BIN)/python -m bench.compare
	$(BIN)/python -m bench.inversion
	$(BIN)/python -m bench.guidance
	$(BIN)/python -m bench.toy
	$(BIN)/python -m bench.pages
	$(BIN)/python -m bench.latent
	$(BIN)/python -m bench.budget
	$(BIN)/python -m bench.memory
	$(BIN)/python -m bench.gpu

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
