# Two commands for a fresh machine: `make report` and `make test`.
# Both create .venv and install metaan with the exact versions in constraints.txt.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.metaan-installed
DOCS_STAMP := $(VENV)/.metaan-docs-installed

.PHONY: report test lint typecheck unit docs bench clean

# The editable install runs metaan from src/; byte-compiling it once spares every
# command compiling its modules again where PYTHONDONTWRITEBYTECODE is set (Python
# still reads .pyc files then, and recompiles in memory any source edited since).
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,simulate]'
	$(BIN)/python -m compileall -q src
	touch $(STAMP)

$(DOCS_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,simulate,docs]'
	touch $(DOCS_STAMP)

report: $(STAMP)
	$(BIN)/metaan report reports/depression.toml

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	MPLBACKEND=Agg $(BIN)/pytest -q

# The documentation site (mkdocs-material, API pages from the docstrings); --strict
# turns every warning (a broken link, a docstring that does not parse) into a failure.
docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

test: lint typecheck unit docs

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev,bench,simulate]"
	for f in benchmarks/*.py; do $(BIN)/python $$f; done

clean:
	rm -rf $(VENV) build src/*.egg-info
	find src -name __pycache__ -prune -exec rm -rf {} +
