# The two commands a person needs: `make demo` and `make test`.
# Both create .venv on first use and install the project into it, so a machine
# with only Python 3.11+ and make is enough.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test venv clean pki fuzz

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
	$(BIN)/python -m pytest -q -n auto

clean:
	rm -rf var/ certs/*/

# Coverage-guided fuzzing (atheris) of the inbound front end and the config loader, each target
# for FUZZ_SECONDS (e.g. `make fuzz FUZZ_SECONDS=1800`). Seeds: tests/fuzz/corpus/<target>/;
# what the run learns goes to var/fuzz/<target>/, crash reproducers to var/fuzz/crashes/.
FUZZ_SECONDS ?= 180
FUZZ_TARGETS ?= mime header wssec inbound config

fuzz: $(STAMP)
	@mkdir -p var/fuzz/crashes
	@for t in $(FUZZ_TARGETS); do \
	  echo "== fuzz target $$t: $(FUZZ_SECONDS) s"; \
	  mkdir -p var/fuzz/$$t; \
	  nice -n 10 $(BIN)/python -m tests.fuzz $$t -max_total_time=$(FUZZ_SECONDS) \
	    -artifact_prefix=var/fuzz/crashes/$$t- var/fuzz/$$t tests/fuzz/corpus/$$t || exit 1; \
	done
