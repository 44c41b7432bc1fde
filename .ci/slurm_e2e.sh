#!/usr/bin/env bash
# The cluster path against a real Slurm: a controller and one node on localhost (Debian's
# slurm-wlm and munge, installed when missing), whose node offers one fake GPU (gres gpu:1 on
# /dev/null). It runs the tiny config (tests/tiny_config.yaml + tests/slurm_config.yaml) once
# locally and once through `snakemake --profile slurm`, and checks that
#   * every job that the profile gives a GPU ran as a Slurm job holding one, and no other did;
#   * table 1 comes out the same both ways.
# The second --profile scales slurm/config.yaml's requests down to the node (one CPU per job, one
# GPU, the node's memory) and adds what a Slurm without slurmdbd needs (squeue polling); the rules,
# GPUs, partitions file and executor are the profile's own.
#
#   bash .ci/slurm_e2e.sh                 # as root; uses .venv (make venv)
# Environment: PYTHON (default .venv/bin/python), MMDISTILL_SLURM_WORKDIR (default: a temp dir,
# removed afterwards unless the run failed). The node has as many CPUs as this script may run on
# (`nproc`: run it under `taskset -c 1` to keep it on one core).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
WORK=${MMDISTILL_SLURM_WORKDIR:-$(mktemp -d /tmp/mmdistill-slurm.XXXXXX)}
CONFIGS=(tests/tiny_config.yaml tests/slurm_config.yaml)
TARGET=results/table1.csv
START=$SECONDS

log() { echo "[slurm_e2e $((SECONDS - START))s] $*"; }

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    log "installing slurm-wlm and munge"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
fi

mkdir -p "$WORK"/{state,spool,log,run}
# Jobs' own srun calls read the default location, not $SLURM_CONF: the config goes there, and a
# config this script did not write is never replaced.
export SLURM_CONF=/etc/slurm/slurm.conf
MARKER="# written by mmdistill .ci/slurm_e2e.sh"
for file in slurm.conf gres.conf; do
    if [ -e "/etc/slurm/$file" ] && ! grep -qF "$MARKER" "/etc/slurm/$file"; then
        log "/etc/slurm/$file exists and is not this script's: not replacing it"; exit 1
    fi
done
CPUS=$(nproc)
# Below the machine's memory, as slurmd requires; jobs are scaled to it.
NODE_MEM_MB=$(awk '/MemTotal/ {print int($2 / 1024 / 2)}' /proc/meminfo)
JOB_MEM_MB=$((NODE_MEM_MB / CPUS))

cat >"$SLURM_CONF" <<EOF
$MARKER
ClusterName=mmdistill-ci
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$WORK/state
SlurmdSpoolDir=$WORK/spool
SlurmctldPidFile=$WORK/run/slurmctld.pid
SlurmdPidFile=$WORK/run/slurmd.pid
SlurmctldLogFile=$WORK/log/slurmctld.log
SlurmdLogFile=$WORK/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
# Finished jobs stay visible to squeue (the profile's status command without slurmdbd) and to
# scontrol, for the GPU check below, for this long: well above the plugin's first status wait.
MinJobAge=3600
ReturnToService=2
GresTypes=gpu
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$NODE_MEM_MB Gres=gpu:1 State=UNKNOWN
PartitionName=gpu Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
cat >/etc/slurm/gres.conf <<EOF
$MARKER
AutoDetect=off
NodeName=localhost Name=gpu File=/dev/null
EOF

PIDS=()
LOCAL=
cleanup() {
    local status=$?
    scancel --user=root 2>/dev/null || true
    [ -n "$LOCAL" ] && { kill -- "-$LOCAL" 2>/dev/null || true; }
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    # slurmctld writes its state on SIGTERM: wait for the daemons to exit before removing it.
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    done
    for file in /etc/slurm/slurm.conf /etc/slurm/gres.conf; do
        grep -qF "$MARKER" "$file" 2>/dev/null && rm -f "$file"
    done
    if [ "$status" -ne 0 ]; then
        log "failed; logs under $WORK (slurmctld, slurmd: $WORK/log; jobs: $WORK/cluster/.snakemake/slurm_logs)"
        tail -n 20 "$WORK"/log/*.log 2>/dev/null || true
    elif [ -z "${MMDISTILL_SLURM_WORKDIR:-}" ]; then
        rm -rf "$WORK" || log "could not remove $WORK"
    fi
}
trap cleanup EXIT

if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    mkdir -p /run/munge && chown munge:munge /run/munge
    rm -f /run/munge/munged.pid
    runuser -u munge -- munged
    PIDS+=("$(cat /run/munge/munged.pid)")
fi
slurmctld -f "$SLURM_CONF"
for _ in $(seq 50); do [ -s "$WORK/run/slurmctld.pid" ] && break; sleep 0.2; done
PIDS+=("$(cat "$WORK/run/slurmctld.pid")")
slurmd -f "$SLURM_CONF" -N localhost
for _ in $(seq 50); do [ -s "$WORK/run/slurmd.pid" ] && break; sleep 0.2; done
PIDS+=("$(cat "$WORK/run/slurmd.pid")")
for _ in $(seq 60); do
    sinfo -h -N -o "%t" | grep -qE "^(idle|mix|alloc)" && break
    sleep 1
done
sinfo -N -o "%N %t %c %m %G" | sed 's/^/  /'
sinfo -h -N -o "%t" | grep -qE "^(idle|mix|alloc)" || { log "the node did not come up"; exit 1; }
log "slurm is up: one node, $CPUS CPUs, ${NODE_MEM_MB} MB, gpu:1"

# The node's partition and the overlay profile, derived from slurm/config.yaml.
"$PYTHON" - "$ROOT/slurm/config.yaml" "$WORK" "$CPUS" "$NODE_MEM_MB" "$JOB_MEM_MB" <<'EOF'
import sys
from pathlib import Path

import yaml

profile, work, cpus, node_mem, job_mem = yaml.safe_load(open(sys.argv[1])), Path(sys.argv[2]), *map(int, sys.argv[3:])
(work / "partitions.yaml").write_text(yaml.safe_dump(
    {"partitions": {"gpu": {"max_gpu": 1, "max_threads": cpus, "max_mem_mb": node_mem}}}))


def scaled(resources):
    out = dict(resources, runtime=60)
    if "mem_mb" in out:
        out["mem_mb"] = min(out["mem_mb"], job_mem)
    if "gpu" in out:
        out["gpu"] = 1
    return out


overlay = {
    "slurm-partition-config": str(work / "partitions.yaml"),
    "slurm-status-command": "squeue",
    "slurm-init-seconds-before-status-checks": 5,
    "seconds-between-status-checks": 5,
    "jobs": cpus,
    "default-resources": scaled(profile["default-resources"]),
    "set-threads": {rule: 1 for rule in profile["set-threads"]},
    "set-resources": {rule: scaled(resources) for rule, resources in profile["set-resources"].items()},
}
(work / "ci-node").mkdir(exist_ok=True)
(work / "ci-node" / "config.yaml").write_text(yaml.safe_dump(overlay, sort_keys=False))
EOF

# Two clones of the committed tree: a fresh clone is what a user (and CI) has.
for run in local cluster; do
    rm -rf "${WORK:?}/$run"
    git clone -q "$ROOT" "$WORK/$run"
done

log "local run (--cores 1) and Slurm run side by side"
(cd "$WORK/local" && OMP_NUM_THREADS=1 exec setsid "$PYTHON" -m snakemake --cores 1 "$TARGET" \
    --configfile "${CONFIGS[@]}" >"$WORK/log/local.log" 2>&1) &
LOCAL=$!
(cd "$WORK/cluster" && OMP_NUM_THREADS=1 "$PYTHON" -m snakemake --profile slurm --profile "$WORK/ci-node" "$TARGET" \
    --configfile "${CONFIGS[@]}" >"$WORK/log/cluster.log" 2>&1) || { tail -n 40 "$WORK/log/cluster.log"; exit 1; }
log "Slurm run done"
wait "$LOCAL" || { LOCAL=; tail -n 40 "$WORK/log/local.log"; exit 1; }
LOCAL=
log "local run done"
grep -q "Using profiles slurm" "$WORK/log/cluster.log" || { log "--profile slurm did not resolve"; exit 1; }

# Every job of the Slurm run, with its rule (the plugin's --comment) and its GPUs.
scontrol show jobs -o >"$WORK/log/jobs.txt"
"$PYTHON" - "$ROOT/slurm/config.yaml" "$WORK/log/jobs.txt" <<'EOF'
import re
import sys
from collections import Counter

import yaml

gpu_rules = {rule for rule, resources in yaml.safe_load(open(sys.argv[1]))["set-resources"].items() if "gpu" in resources}
jobs = [line for line in open(sys.argv[2]) if line.startswith("JobId=")]
ran = Counter()
for job in jobs:
    rule = re.search(r"Comment=rule_(\w+?)(?:_wildcards_\S*)? ", job).group(1)
    state = re.search(r"JobState=(\w+)", job).group(1)
    has_gpu = re.search(r"TresPerJob=\S*gres[:/]gpu", job) is not None  # sbatch --gpus
    assert state == "COMPLETED", f"{rule}: {state}"
    assert has_gpu == (rule in gpu_rules), f"{rule}: GPU {'held' if has_gpu else 'missing'}"
    ran[rule, has_gpu] += 1
assert jobs, "no Slurm job ran"
for (rule, has_gpu), count in sorted(ran.items()):
    print(f"  {count} x {rule}{' (gpu)' if has_gpu else ''}")
print(f"{len(jobs)} Slurm jobs, {sum(c for (_, g), c in ran.items() if g)} holding a GPU")
EOF

for table in results/table1.csv results/table1.md; do
    cmp "$WORK/local/$table" "$WORK/cluster/$table" || { log "$table differs"; diff "$WORK/local/$table" "$WORK/cluster/$table" || true; exit 1; }
done
log "table 1 is the same through Slurm as locally"
echo "1 passed, 0 failed"
