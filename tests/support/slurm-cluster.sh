#!/usr/bin/env bash
# A throwaway three-node Slurm cluster on this machine, for the Slurm test
# (tests/e2e/slurm_test.cpp): munged, slurmctld and three slurmd (n1, n2, n3,
# Debian builds Slurm with multiple-slurmd support), all on 127.0.0.1, on free
# ports, with every file they write (config, key, state, logs, PIDs) under
# DIR, but for their sockets and spool, in a short directory under /tmp.
# Needs root (SlurmUser=root) and Debian's slurm-wlm and munge.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: tests/support/slurm-cluster.sh start DIR
       tests/support/slurm-cluster.sh stop DIR

start: writes DIR/slurm.conf (and cgroup.conf, a munge key), starts munged,
slurmctld and slurmd -N n1|n2|n3 in the background, and waits (at most 60 s)
until the three nodes are idle. On failure it prints the daemons' log tails,
stops what it started and exits 1. Clients then need SLURM_CONF=DIR/slurm.conf.

stop: cancels the jobs still there, then stops every daemon listed in
DIR/pids and the job step daemons (slurmstepd) of the nodes, with what they
run (SIGTERM, then SIGKILL after 10 s), and removes the directory of their
UNIX sockets (/tmp/zfarm-slurm.*: a socket's path holds at most 108 bytes).
DIR itself is the caller's to remove.

Each node declares 4 CPUs whatever this machine has (SlurmdParameters=
config_overrides). Jobs tell the nodes apart by $SLURMD_NODENAME; MinJobAge=5,
KillWait=5 and OverTimeLimit=0, so that jobs end and are forgotten promptly.
EOF
}

die() {
    printf 'slurm-cluster.sh: %s\n' "$*" >&2
    exit 1
}

readonly nodes=(n1 n2 n3)

# True while process PID runs: a zombie does not (the daemons are orphans
# once start returns, and PID 1 may never reap them).
running() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) } # after "PID (COMM) "
    [[ ${stat%% *} != Z ]]
}

# The PIDs of DIR/pids whose process still runs.
live_pids() {
    local pid
    [[ -f $dir/pids ]] || return 0
    while read -r pid; do
        running "$pid" && echo "$pid"
    done <"$dir/pids"
}

# The job step daemons (slurmstepd) of this cluster's nodes, and what they
# run: each keeps its node's log, under DIR, open.
step_daemons() {
    local pid fd
    for pid in $(pgrep -x slurmstepd || true); do
        running "$pid" || continue
        for fd in /proc/"$pid"/fd/*; do
            if [[ $(readlink "$fd" 2>/dev/null) == "$dir"/* ]]; then
                tree "$pid"
                break
            fi
        done
    done
}

# tree PID: PID and its descendants
tree() {
    local child
    echo "$1"
    for child in $(pgrep -P "$1" || true); do tree "$child"; done
}

stop_cluster() {
    local pids i
    # Jobs first, so that nothing is left running under a step daemon: Slurm
    # signals their processes, and SIGKILLs them KillWait (5 s) later.
    if [[ -f $dir/slurm.conf && -n $(live_pids) ]]; then
        export SLURM_CONF=$dir/slurm.conf
        timeout 10 scancel --full --user=root 2>/dev/null || true
        for ((i = 0; i < 150; i++)); do
            [[ -z $(timeout 10 squeue -h -o %i 2>/dev/null) ]] && break
            sleep 0.1
        done
    fi
    # shellcheck disable=SC2207 # a list of numbers
    pids=($(live_pids) $(step_daemons))
    ((${#pids[@]})) || return 0
    kill -TERM "${pids[@]}" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        # shellcheck disable=SC2207
        pids=($(live_pids) $(step_daemons))
        ((${#pids[@]})) || return 0
        sleep 0.1
    done
    kill -KILL "${pids[@]}" 2>/dev/null || true
}

# stop, then remove the sockets' directory.
stop_and_clean() {
    stop_cluster
    if [[ -f $dir/run-dir ]]; then
        rm -rf "$(cat "$dir/run-dir")"
        rm -f "$dir/run-dir"
    fi
}

# run NAME CMD...: CMD in the background, its output in DIR/log/NAME.out and
# its PID in DIR/pids.
run() {
    local name=$1
    shift
    "$@" </dev/null >>"$dir/log/$name.out" 2>&1 &
    echo $! >>"$dir/pids"
}

show_logs() {
    local f
    for f in "$dir"/log/*; do
        printf -- '--- %s\n' "$f" >&2
        tail -n 15 "$f" >&2 || true
    done
}

write_config() {
    local host=$1 ctld_port=$2 i
    shift 2
    cat >"$dir/slurm.conf" <<EOF
# Written by tests/support/slurm-cluster.sh: a test cluster under $dir.
ClusterName=zfarmtest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$run_dir/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/ctld
SlurmdSpoolDir=$run_dir/spool/%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd-%n.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd-%n.log
# No systemd, no cgroups: processes are tracked through /proc.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
# The nodes declare more CPUs than this machine has.
SlurmdParameters=config_overrides
ReturnToService=2
# Jobs end promptly at their time limit, and are forgotten 5 s after they
# end (sbatch --wait polls for that).
MinJobAge=5
KillWait=5
OverTimeLimit=0
InactiveLimit=0
SlurmctldTimeout=30
MailProg=/bin/true
SlurmdTimeout=30
EOF
    for i in "${!nodes[@]}"; do
        printf 'NodeName=%s NodeHostname=%s NodeAddr=127.0.0.1 Port=%s CPUs=4 State=UNKNOWN\n' \
            "${nodes[$i]}" "$host" "$1" >>"$dir/slurm.conf"
        shift
    done
    echo 'PartitionName=test Nodes=n[1-3] Default=YES MaxTime=INFINITE State=UP' >>"$dir/slurm.conf"
    # slurmd loads a cgroup plugin even with proctrack/linuxproc and
    # task/none; cgroup/v1 initialises without a cgroup hierarchy mounted.
    echo 'CgroupPlugin=cgroup/v1' >"$dir/cgroup.conf"
}

start_munged() {
    # munged wants its key private, and its socket in a directory every
    # client can reach (each directory above it world-executable).
    mkdir -p "$dir/munge"
    dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
    chmod 0400 "$dir/munge/munge.key"
    run munged munged -F -f -S "$run_dir/munge.socket" --key-file "$dir/munge/munge.key" \
        --pid-file "$dir/munge/munged.pid" --log-file "$dir/log/munged.log" \
        --seed-file "$dir/munge/munged.seed"
    local i
    for ((i = 0; i < 100; i++)); do
        [[ -S $run_dir/munge.socket ]] && return 0
        sleep 0.1
    done
    return 1
}

nodes_idle() {
    local states
    states=$(sinfo -h -N -o '%N %T' 2>/dev/null | sort -u) || return 1
    [[ $(grep -c ' idle$' <<<"$states") == "${#nodes[@]}" ]]
}

start_cluster() {
    local cmd
    for cmd in slurmctld slurmd munged sinfo; do
        command -v "$cmd" >/dev/null || die "$cmd is not installed"
    done
    ((EUID == 0)) || die "needs root (SlurmUser=root)"
    mkdir -p "$dir/log" "$dir/ctld"
    : >"$dir/pids"
    # The UNIX sockets (munged's, and the step daemons' in the spool
    # directories) take paths of at most 108 bytes: they go to a short
    # directory of their own, which every client can reach, named in
    # DIR/run-dir.
    run_dir=$(mktemp -d /tmp/zfarm-slurm.XXXXXX)
    echo "$run_dir" >"$dir/run-dir"
    chmod 0755 "$run_dir"
    local n
    for n in "${nodes[@]}"; do mkdir -p "$run_dir/spool/$n"; done

    # shellcheck source=scripts/lib/ports.sh
    source "$repo/scripts/lib/ports.sh" # pick_port
    local ports=() i
    for ((i = 0; i <= ${#nodes[@]}; i++)); do
        ports+=("$(pick_port)")
        chosen+=("${ports[-1]}")
    done
    start_munged || {
        show_logs
        stop_and_clean
        die "munged did not start"
    }
    write_config "$(hostname -s)" "${ports[@]}"
    export SLURM_CONF=$dir/slurm.conf
    run slurmctld slurmctld -D -i
    for n in "${nodes[@]}"; do run "slurmd-$n" slurmd -D -N "$n"; done
    for ((i = 0; i < 600; i++)); do
        nodes_idle && return 0
        sleep 0.1
    done
    sinfo -N >&2 || true
    show_logs
    stop_and_clean
    die "the nodes were not idle after 60 s"
}

(($# == 2)) || {
    usage >&2
    exit 2
}
case "$1" in
-h | --help)
    usage
    exit 0
    ;;
esac
dir=$(readlink -f "$2")
repo=$(dirname "$(dirname "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")")")
case "$1" in
start) start_cluster ;;
stop) stop_and_clean ;;
*)
    usage >&2
    exit 2
    ;;
esac
