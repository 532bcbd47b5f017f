# shellcheck shell=bash
# Starting and stopping a whole zfarm pipeline (sink, ventilator, workers) on
# free localhost ports, for the scripts that measure it (bench-faults.sh,
# bench.sh). Sourced; the caller defines die() and calls stop_pids "${pids[@]}"
# from its EXIT trap.
#
# Settings the caller may change before start_pipeline:
#   limit        seconds any one process may live (default 600)
#   cpu_dir      when set, each process's CPU seconds go to cpu_dir/NAME.cpu
#   worker_args  extra arguments for every worker (e.g. --allow-exec)
#   vent_input   file the ventilator reads as its standard input (default
#                /dev/null)
#   vent_tty     when set, the ventilator runs under a pseudo-terminal
#                (util-linux script(1)), so it draws its live progress line,
#                and what that terminal shows goes to this file
#   before_workers  a command start_pipeline runs once the sink and the
#                ventilator listen, before it starts the workers (so before
#                the job's first task); the start fails if it fails (not
#                run with workers_first)
#   workers_first  when 1, the workers start (and connect to the sink)
#                before the ventilator, as on a farm that waits for jobs:
#                vent_started is then a job's start on running workers

# shellcheck source=scripts/lib/ports.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/ports.sh"

limit=600
cpu_dir=''
worker_args=()
vent_input=/dev/null
vent_tty=''
before_workers=()
workers_first=0

# Every process started here (each wrapped in timeout(1), so that even a
# SIGKILLed script leaves nothing running for long).
pids=()

# tree PID: PID and its descendants, deepest first
tree() {
    local child
    for child in $(pgrep -P "$1" || true); do tree "$child"; done
    echo "$1"
}

# stop_pids PID...: SIGTERM to each live PID's process tree, up to 3 s to
# leave, then SIGKILL; reaps them.
stop_pids() {
    local pid alive=() i
    for pid in "$@"; do
        kill -0 "$pid" 2>/dev/null && alive+=("$pid")
    done
    ((${#alive[@]})) || return 0
    for pid in "${alive[@]}"; do # the programs first, then their wrappers
        # shellcheck disable=SC2046 # a list of pids
        kill -TERM $(tree "$pid") 2>/dev/null || true
    done
    for ((i = 0; i < 30; i++)); do
        for pid in "${alive[@]}"; do
            kill -0 "$pid" 2>/dev/null && break
            pid=
        done
        [[ -z $pid ]] && break
        sleep 0.1
    done
    for pid in "${alive[@]}"; do
        # shellcheck disable=SC2046 # a list of pids
        kill -KILL $(tree "$pid") 2>/dev/null || true
    done
    { wait "${alive[@]}" || true; } 2>/dev/null
}

# launch NAME CMD...: runs CMD under timeout(1) and, when cpu_dir is set,
# under GNU time, which writes its CPU seconds "USER SYS" to cpu_dir/NAME.cpu
# (the wait4 rusage of timeout includes the program it reaped).
have_time=0
[[ -x /usr/bin/time ]] && have_time=1
launch() {
    local name=$1
    shift
    if [[ -n $cpu_dir ]] && ((have_time)); then
        /usr/bin/time -f '%U %S' -o "$cpu_dir/$name.cpu" timeout -k 5 "$limit" "$@"
    else
        timeout -k 5 "$limit" "$@"
    fi
}

# start_pipeline BIN DIR WORKERS SINK_ARGS -- VENT_ARGS: a sink (--once), a
# ventilator and WORKERS workers (worker-1..N, --exit-when-done), logs in DIR.
# Sets sink_pid, vent_pid, worker_pids (the timeout(1) processes) and
# vent_started (EPOCHREALTIME when the ventilator was started). The sink and
# the ventilator each start once their ports listen (a lost bind race is
# retried on new ports), the workers last, so they connect at once; or, with
# workers_first=1, the workers first, and the ventilator once each has logged
# that it is up, on the ports they were given (a lost bind race stops them
# all and starts again on new ports).
start_pipeline() {
    local bin=$1 dir=$2 n=$3 attempt i
    shift 3
    local sink_args=() vent_args=() vent_cmd
    while (($#)) && [[ $1 != -- ]]; do
        sink_args+=("$1")
        shift
    done
    shift
    vent_args=("$@")
    chosen=() worker_pids=()
    for attempt in 1 2 3; do
        pr=$(pick_port) || return 1
        pc=$(pick_port) || return 1
        chosen+=("$pr" "$pc")
        launch sink "$bin/zfarm-sink" --once -o "$dir/results.jsonl" \
            --results "$(ep "$pr")" --control "$(ep "$pc")" "${sink_args[@]}" 2>"$dir/sink.log" &
        sink_pid=$!
        pids+=("$sink_pid")
        wait_listening all "$sink_pid" "$pr" "$pc" && break
        stop_pids "$sink_pid"
        ((attempt < 3)) || {
            tail -n 5 "$dir/sink.log" >&2
            return 1
        }
    done
    for attempt in 1 2 3; do
        pt=$(pick_port) || return 1
        pk=$(pick_port) || return 1
        chosen+=("$pt" "$pk")
        if ((workers_first)); then
            start_workers "$bin" "$dir" "$n" || return 1
        fi
        # shellcheck disable=SC2034 # read by the caller
        vent_started=$EPOCHREALTIME
        vent_cmd=("$bin/zfarm-ventilator" --tasks "$(ep "$pt")" --credit "$(ep "$pk")"
            --results "$(ep "$pr")" --control "$(ep "$pc")" "${vent_args[@]}")
        if [[ -n $vent_tty ]]; then # -e: script exits with the ventilator's status
            launch ventilator script -qec "${vent_cmd[*]@Q}" /dev/null \
                <"$vent_input" >"$vent_tty" 2>"$dir/ventilator.log" &
        else
            launch ventilator "${vent_cmd[@]}" \
                <"$vent_input" >"$dir/ventilator.out" 2>"$dir/ventilator.log" &
        fi
        vent_pid=$!
        pids+=("$vent_pid")
        wait_listening any "$vent_pid" "$pt" "$pk" && break
        stop_pids "$vent_pid" "${worker_pids[@]}"
        ((attempt < 3)) || {
            tail -n 5 "$dir/ventilator.log" >&2
            return 1
        }
    done
    ((workers_first)) && return 0
    if ((${#before_workers[@]})) && ! "${before_workers[@]}"; then
        stop_pids "$sink_pid" "$vent_pid"
        return 1
    fi
    start_workers "$bin" "$dir" "$n"
}

# start_workers BIN DIR N: N workers (worker-1..N) on the ports pt, pk, pr,
# pc; sets worker_pids. With workers_first=1, returns once each has logged
# that it is up (at most 10 s; fails if one exits or does not).
start_workers() {
    local bin=$1 dir=$2 n=$3 i deadline=$((SECONDS + 10))
    worker_pids=()
    for ((i = 1; i <= n; i++)); do
        launch "worker-$i" "$bin/zfarm-worker" --exit-when-done --id "worker-$i" \
            --tasks "$(ep "$pt")" --credit "$(ep "$pk")" --results "$(ep "$pr")" \
            --control "$(ep "$pc")" "${worker_args[@]}" 2>"$dir/worker-$i.log" &
        worker_pids+=($!)
        pids+=($!)
    done
    ((workers_first)) || return 0
    for ((i = 1; i <= n; i++)); do
        until grep -q ' up: ' "$dir/worker-$i.log" 2>/dev/null; do
            if ! kill -0 "${worker_pids[i - 1]}" 2>/dev/null || ((SECONDS >= deadline)); then
                tail -n 5 "$dir/worker-$i.log" >&2
                return 1
            fi
            sleep 0.02
        done
    done
}

# finish_pipeline SECONDS: waits for the ventilator (at most SECONDS, then
# stops it; sets vent_ended, EPOCHREALTIME when it exited), then gives the
# sink and workers 5 s to leave on their own, then stops them. Fails if the
# ventilator did not finish with status 0. It waits rather than polls: a loop
# of `sleep 0.01` starts a hundred processes a second on the machine whose
# run is being timed (a tenth of 2 cores in the exec benchmark).
finish_pipeline() {
    local status=0 timer i
    { sleep "$1" && stop_pids "$vent_pid"; } 2>/dev/null &
    timer=$!
    wait "$vent_pid" || status=$?
    # shellcheck disable=SC2034 # read by the caller
    vent_ended=$EPOCHREALTIME
    pkill -P "$timer" 2>/dev/null || true # its sleep
    { kill "$timer" && wait "$timer"; } 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$sink_pid" 2>/dev/null || break
        sleep 0.05
    done
    stop_pids "$sink_pid" "${worker_pids[@]}"
    pids=()
    return "$status"
}
