# Two commands for a newcomer: `make run` (the whole system) and `make test` (the suite).
# Both install what is missing first; nothing here needs Docker.

VENV   ?= .venv
PYTHON ?= python3
BIN     = $(VENV)/bin

.PHONY: install run test chaos bench browser clean-data lint bytecode

# The engine's own packages (what `make lint` checks too).
PACKAGES = domain schemas marketdata readmodel streams projections api producers infra oee telemetry

install: $(VENV)/.installed bytecode

# Every process start would otherwise compile the engine's modules again when the environment
# sets PYTHONDONTWRITEBYTECODE (≈0.4 s of a worker restart's ≈3 s); pip compiles only the
# dependencies. Quick when nothing changed: compileall skips what is up to date.
bytecode: $(VENV)/.installed
	$(BIN)/python -m compileall -q $(PACKAGES) >/dev/null

$(VENV)/.installed: pyproject.toml
	@command -v java >/dev/null || { echo "Java 17 is required (apt-get install openjdk-17-jre-headless)"; exit 2; }
	@command -v mvn  >/dev/null || { echo "Maven is required (apt-get install maven)"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

# Headless Chromium from Debian for the dashboard's end-to-end test (never a browser download).
browser:
	@command -v chromium >/dev/null || { \
	  echo "installing Debian's chromium for the dashboard test"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || { echo "could not install chromium: run 'apt-get install chromium' as root"; exit 2; }; }

run: install
	$(BIN)/oee run

test: install browser
	$(BIN)/pytest

# The fault suite of tests/chaos: SIGKILLs, SIGSTOPs and poison records under load, each
# scenario held to one checker; prints the scenario table (also test-artifacts/chaos.md).
chaos: install
	$(BIN)/pytest tests/chaos -m chaos -p no:cacheprovider

bench: install
	$(BIN)/python -m bench all

lint: install
	$(BIN)/mypy $(PACKAGES)

clean-data:
	rm -rf $${HOME}/.local/share/oee
