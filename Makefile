# Two entry points: `make run` (the pipeline on config.yaml) and `make test`.
# Each creates .venv from requirements.lock when it is missing or the lock changed,
# and stops when the venv holds other versions than the lock's.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= 2
TARGET ?= all

.PHONY: venv venv-rebuild lock envs check-envs check-upgrades run test test-slurm dry-run lint fmt bench report plan clean

# The lock pins the whole closure with hashes (CPython 3.11, Linux x86_64).
venv: $(VENV)/.project
	@$(BIN)/python -m mmdistill.lock requirements.lock

$(VENV)/.locked: requirements.lock
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes --no-deps -r requirements.lock
	touch $@

$(VENV)/.project: $(VENV)/.locked pyproject.toml
	$(BIN)/pip install --quiet --no-deps --no-build-isolation --editable .
	touch $@

venv-rebuild:
	rm -rf $(VENV)
	$(MAKE) venv

# Regenerate requirements.lock from requirements.txt (pip-tools in a scratch venv).
lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet pip-tools==7.6.2
	.lock-venv/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
		--no-emit-index-url --no-emit-find-links --output-file requirements.lock requirements.txt
	rm -rf .lock-venv
	$(MAKE) envs

# Canary: resolve requirements.txt afresh (newest transitive releases) into a scratch
# venv, run the fast tests there, and list what moved against the lock.
check-upgrades:
	rm -rf .upgrade-venv
	$(PYTHON) -m venv .upgrade-venv
	.upgrade-venv/bin/pip install --quiet -r requirements.txt
	.upgrade-venv/bin/pip install --quiet --no-deps --editable .
	-.upgrade-venv/bin/python -m mmdistill.lock requirements.lock
	OMP_NUM_THREADS=1 .upgrade-venv/bin/python -m pytest -m "not slow" -q

run: venv
	$(BIN)/snakemake --cores $(CORES) $(TARGET)

test: venv
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest

# The tiny config through `snakemake --profile slurm` on a local Slurm (root; see .ci/slurm_e2e.sh).
test-slurm: venv
	bash .ci/slurm_e2e.sh

dry-run: venv
	$(BIN)/snakemake --cores $(CORES) --dry-run $(TARGET)

lint: venv
	$(BIN)/snakemake --lint

# The Snakefile and rules in snakefmt's format (tests/test_format.py checks it).
fmt: venv
	$(BIN)/snakefmt Snakefile rules

bench: venv
	$(BIN)/python benchmarks/bench_nounphrase.py
	$(BIN)/python benchmarks/bench_filter_scale.py
	$(BIN)/python benchmarks/bench_generation.py
	$(BIN)/python benchmarks/bench_dryrun.py
	$(BIN)/python benchmarks/bench_stages.py

# GPU-hours and GPU memory per rule of a real config at the paper's scale, on paper (README, "Capacity plan").
CONFIG ?= configs/comd.yaml
plan: venv
	$(BIN)/python -m mmdistill.plan --config $(CONFIG)

report: venv
	$(BIN)/snakemake --cores $(CORES) --report results/report.html $(TARGET)

clean:
	rm -rf results .snakemake .lock-venv .upgrade-venv

# envs/*.yaml: their direct pins at the lock's versions, and the closure those pull in.
envs:
	$(PYTHON) -c 'import sys; sys.path.insert(0, "src"); from mmdistill.lock import main; sys.exit(main(sys.argv[1:]))' \
		envs requirements.lock envs/*.yaml

# Each envs/*.yaml complete on its own: its pip section alone in a scratch venv, where everything its
# rules' scripts import must import (results/bench/envs.json; README, "Conda envs"). Needs PyPI and
# several GB of scratch disk per env; ENVS=train checks one.
check-envs: venv
	$(BIN)/python -m mmdistill.envcheck $(ENVS)
