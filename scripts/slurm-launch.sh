#!/usr/bin/env bash
# Submits one zfarm job to Slurm: scripts/slurm/zfarm.sbatch, with this
# checkout's programs, from the current directory (where the results land).
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: scripts/slurm-launch.sh [OPTIONS] [VENTILATOR_ARGS...] [-- CMD ARG...]

Submits scripts/slurm/zfarm.sbatch with sbatch, from the current directory:
in the allocation, the first node runs zfarm-sink and zfarm-ventilator, and
srun starts one zfarm-worker per node, connecting to the first node. The
workers stop taking tasks --leave-margin seconds before the allocation ends
and hand back what they have not finished, so that nothing is killed
mid-flight; a job cut short that way is finished by submitting it again with
--resume (the job's output file says how).

  scripts/slurm-launch.sh -N 4 --time 30 --wait --demo 1000
  ls *.wav | sed "s|^|$PWD/|" >wavs.txt
  scripts/slurm-launch.sh -N 8 -t 2:00:00 --allow-exec --input wavs.txt -- sox {} {.}.flac

Options (for sbatch):
  -N, --nodes N        nodes, one worker each (default 2)
  -t, --time T         time limit, as sbatch takes it (MIN, H:MM:SS, D-HH; default 1:00:00)
  -p, --partition P    partition
  -A, --account A      account
  -c, --cpus-per-task N  CPUs per worker, and its threads (default: whole nodes)
  --sbatch-arg ARG     pass ARG to sbatch (repeatable), e.g. --sbatch-arg=--qos=long
  --wait               wait for the job to end, and exit with its status
Options (for zfarm):
  --threads N          tasks each worker runs at once (default: -c, else the node's cores)
  --allow-exec         let the workers run commands (exec tasks)
  --worker-arg ARG     pass ARG to every worker (repeatable; no spaces)
  -o FILE              the results file (default zfarm-JOB.jsonl here)
  --leave-margin S     seconds before the end at which workers stop taking tasks (default 120)
  --leave-grace S      seconds running tasks then have before they are handed back (default 60)
  -h, --help           show this help

Anything else goes to the ventilator, and so does `-- CMD ARG...` (give
--input FILE with a command: the job has no terminal). Without a workload it
runs --demo 100; without --job it is named slurm-JOBID. The job's output is
zfarm-JOBID.out here, its logs are in zfarm-JOBID.logs/ here (which every
node must reach: a shared file system).

Exit status: sbatch's (0 submitted), or with --wait the job's: the
ventilator's (0 all tasks ok, 1 some failed or the job was cut short), or 1
when a component failed. 2: bad usage.
Environment: ZFARM_BUILD_DIR (default build), and the ZFARM_* variables
zfarm.sbatch documents, which the job inherits.
EOF
}

die() {
    printf 'slurm-launch.sh: %s\n' "$*" >&2
    exit 2
}

sbatch_args=() vent_args=() worker_args=()
while (($#)); do
    case "$1" in
    -N | --nodes | -t | --time | -p | --partition | -A | --account | -c | --cpus-per-task)
        (($# >= 2)) || die "$1 needs a value"
        sbatch_args+=("$1" "$2")
        shift
        ;;
    --nodes=* | --time=* | --partition=* | --account=* | --cpus-per-task=* | -N?* | -t?* | -p?* | \
        -A?* | -c?*)
        sbatch_args+=("$1")
        ;;
    --sbatch-arg)
        (($# >= 2)) || die "--sbatch-arg needs a value"
        sbatch_args+=("$2")
        shift
        ;;
    --sbatch-arg=*) sbatch_args+=("${1#--sbatch-arg=}") ;;
    --wait) sbatch_args+=(--wait) ;;
    --threads)
        (($# >= 2)) || die "--threads needs a number"
        [[ $2 =~ ^[1-9][0-9]{0,3}$ ]] || die "--threads takes a positive number, not '$2'"
        export ZFARM_THREADS=$2
        shift
        ;;
    --allow-exec) worker_args+=(--allow-exec) ;;
    --worker-arg)
        (($# >= 2)) || die "--worker-arg needs a value"
        worker_args+=("$2")
        shift
        ;;
    --worker-arg=*) worker_args+=("${1#--worker-arg=}") ;;
    -o)
        (($# >= 2)) || die "-o needs a file"
        export ZFARM_OUTPUT=$2
        shift
        ;;
    --leave-margin | --leave-grace)
        (($# >= 2)) || die "$1 needs a number of seconds"
        [[ $2 =~ ^[0-9]{1,6}$ ]] || die "$1 takes whole seconds, not '$2'"
        if [[ $1 == --leave-margin ]]; then export ZFARM_LEAVE_MARGIN=$2; else export ZFARM_LEAVE_GRACE=$2; fi
        shift
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    --) # the ventilator's command follows
        vent_args+=("$@")
        break
        ;;
    *) vent_args+=("$1") ;;
    esac
    shift
done
for a in "${worker_args[@]}"; do
    [[ $a != *[[:space:]]* ]] || die "--worker-arg '$a': worker arguments cannot hold spaces"
done

command -v sbatch >/dev/null || die "no sbatch here: run this where Slurm jobs are submitted"
here=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
repo=$(dirname "$here")
bin=${ZFARM_BUILD_DIR:-$repo/build}/bin
for p in zfarm-sink zfarm-worker zfarm-ventilator; do
    [[ -x $bin/$p ]] || die "no $bin/$p: build zfarm first (scripts/setup.sh)"
done
export ZFARM_HOME=$repo
ZFARM_BIN=$(readlink -f "$bin")
export ZFARM_BIN
if ((${#worker_args[@]})); then
    export ZFARM_WORKER_ARGS="${ZFARM_WORKER_ARGS:+$ZFARM_WORKER_ARGS }${worker_args[*]}"
fi

exec sbatch "${sbatch_args[@]}" "$repo/scripts/slurm/zfarm.sbatch" "${vent_args[@]}"
