#!/usr/bin/env bash
# Runs one zfarm job on this machine: a sink, N workers and a ventilator on
# free localhost ports. Stops everything on Ctrl-C or when a component fails,
# and exits with the job's status.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: scripts/run-local.sh [OPTIONS] [VENTILATOR_ARGS...] [-- CMD ARG...]

Starts zfarm-sink (--once), N zfarm-worker (--exit-when-done) and
zfarm-ventilator on this machine, on free localhost ports picked at random,
and waits for the job. The ventilator's standard input, output and error
are this script's, so it reads input lines and prints its summary here; the
sink and the workers log to files, whose place is printed first.

  scripts/run-local.sh -j 2 --demo 100 --dispatch credit
  ls *.txt | scripts/run-local.sh --allow-exec --dispatch credit -- gzip -k {}

Options:
  -j N              number of workers (default: the number of cores)
  --threads N       executor threads per worker (default 1)
  --allow-exec      let the workers run commands (exec tasks)
  --worker-arg ARG  pass ARG to every worker (repeatable)
  --sink-arg ARG    pass ARG to the sink (repeatable), e.g. --sink-arg=--keep-order
  -o FILE           the sink's results file (default: results.jsonl in the
                    log directory)
  --dir DIR         put logs (and results) in DIR (default: a new
                    temporary directory)
  --timeout S       stop the job after S seconds (default 0: no limit)
  -h, --help        show this help

Anything else goes to the ventilator, and so does `-- CMD ARG...`, the
command of a command job (zfarm-ventilator's own syntax). With no workload
given it runs the ZeroMQ Guide's (--demo 100). The ventilator is told how
many workers were started (--expect-workers N, unless you give
--expect-workers or --min-workers): when fewer connect within its
--connect-deadline (default 30 s), it cancels the job and exits 2.

When a component fails before the job ends (the sink exits, or a worker
exits with an error), everything is stopped, the last lines of its log are
shown, and the script exits 1. Ctrl-C stops everything (the ventilator
cancels its job) and exits 130.

Exit status: the ventilator's (0 all tasks ok, 1 some failed, 2 bad usage
or too few workers connected), or 1 when a component failed, 130/143 when
interrupted.
Environment: ZFARM_BUILD_DIR (default build), TMPDIR.
EOF
}

die() {
    printf 'run-local.sh: %s\n' "$*" >&2
    exit 2
}

workers=$(nproc 2>/dev/null || echo 2) threads=1 timeout=0 dir='' output=''
worker_extra=() sink_extra=() vent_args=()
while (($#)); do
    case "$1" in
    -j)
        (($# >= 2)) || die "-j needs a number"
        workers=$2
        shift
        ;;
    -j*) workers=${1#-j} ;;
    --threads)
        (($# >= 2)) || die "--threads needs a number"
        threads=$2
        shift
        ;;
    --allow-exec) worker_extra+=(--allow-exec) ;;
    --worker-arg)
        (($# >= 2)) || die "--worker-arg needs a value"
        worker_extra+=("$2")
        shift
        ;;
    --worker-arg=*) worker_extra+=("${1#--worker-arg=}") ;;
    --sink-arg)
        (($# >= 2)) || die "--sink-arg needs a value"
        sink_extra+=("$2")
        shift
        ;;
    --sink-arg=*) sink_extra+=("${1#--sink-arg=}") ;;
    -o)
        (($# >= 2)) || die "-o needs a file"
        output=$2
        shift
        ;;
    --dir)
        (($# >= 2)) || die "--dir needs a directory"
        dir=$2
        shift
        ;;
    --timeout)
        (($# >= 2)) || die "--timeout needs a number of seconds"
        timeout=$2
        shift
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    --) # the ventilator's command follows: it is the ventilator's, with its --
        vent_args+=("$@")
        break
        ;;
    *) vent_args+=("$1") ;;
    esac
    shift
done
if [[ ! $workers =~ ^[1-9][0-9]{0,2}$ ]] || ((workers > 256)); then
    die "-j takes a number from 1 to 256, not '$workers'"
fi
[[ $threads =~ ^[1-9][0-9]{0,3}$ ]] || die "--threads takes a positive number, not '$threads'"
[[ $timeout =~ ^[0-9]{1,7}$ ]] || die "--timeout takes a whole number of seconds, not '$timeout'"

has_workload=0
for a in "${vent_args[@]}"; do
    case "$a" in
    --) # a command: everything after it is the command's
        has_workload=1
        break
        ;;
    --demo | --demo=* | --echo | --echo=* | --sleep | --sleep=* | --spin | --spin=* | \
        --tasks-file | --tasks-file=* | --input | --input=*) has_workload=1 ;;
    --tasks | --tasks=* | --credit | --credit=* | --results | --results=* | --control | \
        --control=* | --sink | --sink=*)
        die "$a: run-local.sh picks the endpoints itself"
        ;;
    esac
done
((has_workload)) || vent_args+=(--demo 100)

here=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
repo=$(dirname "$here")
bin=${ZFARM_BUILD_DIR:-$repo/build}/bin
if [[ ! -x $bin/zfarm-sink || ! -x $bin/zfarm-worker || ! -x $bin/zfarm-ventilator ]]; then
    echo "run-local.sh: $bin has no zfarm binaries yet; building them (scripts/setup.sh)" >&2
    bash "$repo/scripts/setup.sh" >&2
fi
bin=$(readlink -f "$bin")
if [[ -z $dir ]]; then
    dir=$(mktemp -d "${TMPDIR:-/tmp}/zfarm-run.XXXXXX")
else
    mkdir -p "$dir" || die "cannot create --dir $dir"
fi
dir=$(readlink -f "$dir")
[[ -n $output ]] || output=$dir/results.jsonl

# shellcheck source=scripts/lib/pipeline.sh
source "$here/lib/pipeline.sh" # ports, and stop_pids: TERM, then KILL, to whole process trees
# shellcheck source=scripts/lib/launch.sh
source "$here/lib/launch.sh" # vent_expect
# A worker that never connects fails the job (exit 2) by the ventilator's
# --connect-deadline; any failing worker stops everything here anyway.
vent_expect vent_args "$workers"

# Every process started here (pids, from pipeline.sh), so the traps stop
# exactly those, with their descendants: a worker's running commands too.
stop_all() {
    ((${#pids[@]})) || return 0
    stop_pids "${pids[@]}"
}
trap stop_all EXIT
trap 'echo "run-local.sh: interrupted; logs in $dir" >&2; exit 130' INT
trap 'exit 143' TERM HUP

show_log() {
    printf -- '--- %s (last lines)\n' "$1" >&2
    tail -n 15 "$1" >&2 || true
}
lost_port_race() { grep -qi 'address already in use' "$1"; }

# The sink first, then the ventilator, each once its ports listen (a bind
# that loses a race for a port is retried on new ones); the workers last, so
# they connect at once.
sink_log=$dir/sink.log
for attempt in 1 2 3; do
    pr=$(pick_port) || exit 2
    pc=$(pick_port) || exit 2
    chosen+=("$pr" "$pc")
    "$bin/zfarm-sink" --once -o "$output" --results "$(ep "$pr")" --control "$(ep "$pc")" \
        "${sink_extra[@]}" </dev/null >"$dir/sink.out" 2>"$sink_log" &
    sink_pid=$!
    pids+=("$sink_pid")
    wait_listening all "$sink_pid" "$pr" "$pc" && break
    if ! kill -0 "$sink_pid" 2>/dev/null && { ((attempt == 3)) || ! lost_port_race "$sink_log"; }; then
        status=0
        wait "$sink_pid" || status=$?
        cat "$sink_log" >&2
        exit "$status"
    fi
    stop_all
    ((attempt < 3)) || die "the sink did not start listening; logs in $dir"
done

vent_log=$dir/ventilator.log
for attempt in 1 2 3; do
    pt=$(pick_port) || exit 2
    pk=$(pick_port) || exit 2
    chosen+=("$pt" "$pk")
    # Its stdin and stdout are ours (input lines, the summary); its stderr
    # goes to its log, which is shown here as it grows (tail follows it
    # until the ventilator exits).
    : >"$vent_log"
    "$bin/zfarm-ventilator" --tasks "$(ep "$pt")" --credit "$(ep "$pk")" \
        --results "$(ep "$pr")" --control "$(ep "$pc")" "${vent_args[@]}" \
        0<&0 2>"$vent_log" &
    vent_pid=$!
    pids+=("$vent_pid")
    tail -s 0.1 -n +1 -f --pid="$vent_pid" "$vent_log" >&2 &
    tail_pid=$!
    wait_listening any "$vent_pid" "$pt" "$pk" && break
    if kill -0 "$vent_pid" 2>/dev/null; then
        kill -TERM "$vent_pid" 2>/dev/null || true
        die "the ventilator did not start listening; logs in $dir"
    fi
    status=0
    wait "$vent_pid" || status=$?
    wait "$tail_pid" 2>/dev/null || true
    if ((attempt == 3)) || ! lost_port_race "$vent_log"; then
        exit "$status" # it said why on stderr
    fi
done

worker_pids=()
for ((i = 1; i <= workers; i++)); do
    "$bin/zfarm-worker" --exit-when-done --id "worker-$i" --threads "$threads" \
        --tasks "$(ep "$pt")" --credit "$(ep "$pk")" --results "$(ep "$pr")" \
        --control "$(ep "$pc")" "${worker_extra[@]}" </dev/null 2>"$dir/worker-$i.log" &
    pids+=($!)
    worker_pids+=($!)
done
printf 'run-local.sh: %d worker(s); logs in %s (sink.log, ventilator.log, worker-N.log); ' \
    "$workers" "$dir" >&2
printf 'results in %s\n' "$output" >&2

# Wait for the ventilator, watching the others: the sink must not leave
# before it, and a worker must not fail (exit non-zero) while it runs.
failed_part=''
deadline=$((SECONDS + timeout))
declare -A reaped=()
while kill -0 "$vent_pid" 2>/dev/null; do
    if ((timeout > 0 && SECONDS >= deadline)); then
        echo "run-local.sh: the job was still running after $timeout s (--timeout)" >&2
        failed_part=timeout
        break
    fi
    if ! kill -0 "$sink_pid" 2>/dev/null; then
        failed_part=sink
        break
    fi
    for i in "${!worker_pids[@]}"; do
        pid=${worker_pids[$i]}
        [[ -n ${reaped[$pid]:-} ]] && continue
        kill -0 "$pid" 2>/dev/null && continue
        status=0
        wait "$pid" || status=$?
        reaped[$pid]=$status
        if ((status != 0)); then
            failed_part="worker-$((i + 1))"
            break 2
        fi
    done
    sleep 0.1
done
if [[ -n $failed_part ]]; then
    if [[ $failed_part != timeout ]]; then
        log=$dir/$failed_part.log
        echo "run-local.sh: $failed_part exited before the job finished; stopping everything" >&2
        show_log "$log"
    fi
    stop_all
    exit 1
fi
vent_status=0
wait "$vent_pid" || vent_status=$?
wait "$tail_pid" 2>/dev/null || true # the rest of its log, before we print more

# The sink (--once) and the workers (--exit-when-done) leave on their own once
# the job is done; give them 5 s.
for ((i = 0; i < 50; i++)); do
    running=0
    for pid in "$sink_pid" "${worker_pids[@]}"; do
        [[ -n ${reaped[$pid]:-} ]] && continue
        kill -0 "$pid" 2>/dev/null && running=1
    done
    ((running)) || break
    sleep 0.1
done
stop_all
exit "$vent_status"
