# One-command set-up: `make demo` and `make test` create .venv when it is missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= all

.PHONY: venv test test-slow test-slurm demo lint format config-doc clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps overcomplete==0.3.0
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

test: venv
	$(BIN)/pytest -q -m "not slow" tests

# Whole-workflow runs and full-size calibration simulations (minutes each); CI runs them after `make test`.
test-slow: venv
	$(BIN)/pytest -q -m slow tests

demo: venv
	$(BIN)/snakemake --cores $(CORES) --configfile config/demo.yaml
	$(BIN)/snakemake --cores $(CORES) --configfile config/demo.yaml --report results/report.html

lint: venv
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/ruff check workflow tests benchmarks
	$(BIN)/ruff format --check workflow tests benchmarks

format: venv
	$(BIN)/snakefmt Snakefile workflow/rules
	$(BIN)/ruff format workflow tests benchmarks

# config/README.md from config/schema.yaml (tests/workflow/test_config_files.py keeps them in step)
config-doc: venv
	PYTHONPATH=workflow/scripts $(BIN)/python -m vlmbinding.workflow.configdoc

clean:
	rm -rf results logs benchmarks/*.tsv .snakemake

# A real single-node SLURM on localhost (root; installs Debian's slurm packages if missing)
test-slurm: venv
	bash tests/slurm/run.sh
