# Two entry points: `make run` (the pipeline on config.yaml) and `make test`.
# Each creates .venv with the pinned dependencies when it is missing.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= 2
TARGET ?= all

.PHONY: venv run test dry-run lint bench report slurm-profile clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade --quiet pip
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps --editable .
	touch $@

run: venv
	$(BIN)/snakemake --cores $(CORES) $(TARGET)

test: venv
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest

dry-run: venv
	$(BIN)/snakemake --cores $(CORES) --dry-run $(TARGET)

lint: venv
	$(BIN)/snakemake --lint

bench: venv
	$(BIN)/python benchmarks/bench_nounphrase.py
	$(BIN)/python benchmarks/bench_generation.py
	$(BIN)/python benchmarks/bench_dryrun.py

report: venv
	$(BIN)/snakemake --cores $(CORES) --report results/report.html $(TARGET)

slurm-profile:
	mkdir -p $(HOME)/.config/snakemake
	cp -r profiles/slurm $(HOME)/.config/snakemake/slurm

clean:
	rm -rf results .snakemake
