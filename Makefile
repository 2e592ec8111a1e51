# The two commands a person needs: `make demo` and `make test`.
# Both create .venv on first use and install the project into it, so a machine
# with only Python 3.11+ and make is enough.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test venv clean pki

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

pki: $(STAMP)
	$(BIN)/swgw pki init

demo: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m gateway.demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

clean:
	rm -rf var/ certs/*/
