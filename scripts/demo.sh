#!/usr/bin/env bash
# Runs the whole pipeline on this machine: a sink, a ventilator and N workers
# on free localhost ports, the ZeroMQ Guide's workload by default, then prints
# a one-screen summary of how well the work was balanced.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: scripts/demo.sh [-j N] [--timeout S] [-h|--help] [VENTILATOR_ARGS...]

Runs zfarm on localhost: a sink (--once), N workers (--exit-when-done) and a
ventilator, each on free ports picked at random, with logs and results in a
fresh temporary directory. Builds the binaries first (scripts/setup.sh) if
they are missing.

By default the ventilator runs the ZeroMQ Guide's workload with credit
dispatch: --demo 100 --dispatch credit (100 tasks sleeping 1-100 ms; an idle
worker takes the next task). Other arguments go to zfarm-ventilator and
replace those defaults when they name a workload or a dispatch mode:
  scripts/demo.sh --dispatch push
  scripts/demo.sh -j 2 --spin 40 --ms 25
  scripts/demo.sh --demo 1000 --seed 7

Options:
  -j N         number of workers (default 4)
  --timeout S  stop the job if it has not finished after S seconds
               (default 600; 0 waits forever)
  -h, --help   show this help
  --           pass every argument after it to the ventilator

The summary shows the ventilator's final line, the ideal makespan (the sum of
the tasks' run times / N) against the job's wall time as the sink measured it,
tasks per worker, and where the results and logs are.

Exit status: the ventilator's (0 all tasks ok, 1 some failed, 2 bad usage).
Environment: ZFARM_BUILD_DIR (default build), TMPDIR.
EOF
}

die() {
    printf 'demo.sh: %s\n' "$*" >&2
    exit 2
}

workers=4 timeout=600
vent_args=()
while (($#)); do
    case "$1" in
    -j)
        (($# >= 2)) || die "-j needs a number"
        workers=$2
        shift
        ;;
    -j*) workers=${1#-j} ;;
    --timeout)
        (($# >= 2)) || die "--timeout needs a number of seconds"
        timeout=$2
        shift
        ;;
    --timeout=*) timeout=${1#--timeout=} ;;
    -h | --help)
        usage
        exit 0
        ;;
    --)
        shift
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
[[ $timeout =~ ^[0-9]{1,7}$ ]] || die "--timeout takes a whole number of seconds, not '$timeout'"

has_workload=0 has_dispatch=0
for a in "${vent_args[@]}"; do
    case "$a" in
    --demo | --demo=* | --echo | --echo=* | --sleep | --sleep=* | --spin | --spin=* | \
        --tasks-file | --tasks-file=*) has_workload=1 ;;
    --dispatch | --dispatch=*) has_dispatch=1 ;;
    --tasks | --tasks=* | --credit | --credit=* | --results | --results=* | --control | \
        --control=* | --sink | --sink=*)
        die "$a: demo.sh picks the endpoints itself" ;;
    esac
done
((has_workload)) || vent_args+=(--demo 100)
((has_dispatch)) || vent_args+=(--dispatch credit)

cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."
bin=${ZFARM_BUILD_DIR:-build}/bin
if [[ ! -x $bin/zfarm-sink || ! -x $bin/zfarm-worker || ! -x $bin/zfarm-ventilator ]]; then
    echo "demo.sh: $bin has no zfarm binaries yet; building them (scripts/setup.sh)" >&2
    bash scripts/setup.sh
fi
bin=$(readlink -f "$bin")

dir=$(mktemp -d "${TMPDIR:-/tmp}/zfarm-demo.XXXXXX")

# Every process this script starts, so the trap can stop exactly those.
pids=()
cleanup() {
    local pid alive=() i
    for pid in "${pids[@]}"; do
        kill -0 "$pid" 2>/dev/null && alive+=("$pid")
    done
    ((${#alive[@]})) || return 0
    kill -TERM "${alive[@]}" 2>/dev/null || true
    for ((i = 0; i < 30; i++)); do # up to 3 s to finish gracefully
        for pid in "${alive[@]}"; do
            kill -0 "$pid" 2>/dev/null && break
            pid=
        done
        [[ -z $pid ]] && break
        sleep 0.1
    done
    kill -KILL "${alive[@]}" 2>/dev/null || true
    wait "${alive[@]}" 2>/dev/null || true
}
trap cleanup EXIT
trap 'echo "demo.sh: interrupted; logs in $dir" >&2; exit 130' INT
trap 'exit 143' TERM HUP

# shellcheck source=scripts/lib/ports.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib/ports.sh"

# A process that exits because another one took its port in the meantime.
lost_port_race() { grep -qi 'address already in use' "$1"; }
show_log() {
    printf -- '--- %s (last lines)\n' "$1" >&2
    tail -n 15 "$1" >&2 || true
}

# The sink first, then the ventilator, each once its ports listen: a worker
# started later connects at once, whereas one started before the ventilator
# binds retries only after ZeroMQ's reconnect interval (100-200 ms), which
# would count as idle time in the job's wall clock. A bind that loses a race
# for a port is retried on new ones.
sink_log=$dir/sink.log vent_log=$dir/ventilator.log
results=$dir/results.jsonl
for attempt in 1 2 3; do
    pr=$(pick_port) && chosen+=("$pr")
    pc=$(pick_port) && chosen+=("$pc")
    "$bin/zfarm-sink" --once -o "$results" --results "$(ep "$pr")" --control "$(ep "$pc")" \
        2>"$sink_log" &
    sink_pid=$!
    pids+=("$sink_pid")
    wait_listening all "$sink_pid" "$pr" "$pc" && break
    cleanup
    if ((attempt == 3)) || ! lost_port_race "$sink_log"; then
        show_log "$sink_log"
        die "the sink did not start"
    fi
done

for attempt in 1 2 3; do
    pt=$(pick_port) && chosen+=("$pt")
    pk=$(pick_port) && chosen+=("$pk")
    "$bin/zfarm-ventilator" --tasks "$(ep "$pt")" --credit "$(ep "$pk")" \
        --results "$(ep "$pr")" --control "$(ep "$pc")" "${vent_args[@]}" \
        >"$dir/ventilator.out" 2>"$vent_log" &
    vent_pid=$!
    pids+=("$vent_pid")
    # It binds the tasks port (push dispatch) or the credit port (credit).
    wait_listening any "$vent_pid" "$pt" "$pk" && break
    status=0
    if kill -0 "$vent_pid" 2>/dev/null; then
        kill -TERM "$vent_pid"
        status=1
    fi
    wait "$vent_pid" || status=$?
    if ((attempt == 3)) || ! lost_port_race "$vent_log"; then
        cat "$dir/ventilator.out" "$vent_log" >&2
        exit "$status"
    fi
done

worker_pids=()
for ((i = 1; i <= workers; i++)); do
    "$bin/zfarm-worker" --exit-when-done --id "worker-$i" \
        --tasks "$(ep "$pt")" --credit "$(ep "$pk")" --results "$(ep "$pr")" --control "$(ep "$pc")" \
        2>"$dir/worker-$i.log" &
    pids+=($!)
    worker_pids+=($!)
done
printf 'demo.sh: %d workers, ventilator %s; logs in %s\n' "$workers" "${vent_args[*]}" "$dir"

# Wait for the ventilator; stop early if the sink or every worker is gone.
alive() {
    local pid
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && return 0; done
    return 1
}
problem=
deadline=$((SECONDS + timeout))
while kill -0 "$vent_pid" 2>/dev/null; do
    if ((timeout > 0 && SECONDS >= deadline)); then
        problem="the job was still running after $timeout s (--timeout)"
        break
    fi
    if ! alive "$sink_pid"; then
        problem="the sink exited before the job finished"
        break
    fi
    if ! alive "${worker_pids[@]}"; then
        problem="every worker exited before the job finished"
        break
    fi
    sleep 0.1
done
if [[ -n $problem ]] && kill -0 "$vent_pid" 2>/dev/null; then
    printf 'demo.sh: %s; stopping the ventilator\n' "$problem" >&2
    kill -TERM "$vent_pid" 2>/dev/null || true
fi
vent_status=0
wait "$vent_pid" || vent_status=$?

# The sink (--once) and the workers (--exit-when-done) leave on their own once
# the job is done; give them 5 s.
if [[ -z $problem ]]; then
    for ((i = 0; i < 50; i++)); do
        alive "$sink_pid" "${worker_pids[@]}" || break
        sleep 0.1
    done
fi
cleanup

if [[ $problem == *exited* ]]; then
    show_log "$sink_log"
    for f in "$dir"/worker-*.log; do show_log "$f"; done
fi
if ((vent_status == 2)); then
    cat "$dir/ventilator.out" >&2
    show_log "$vent_log"
    exit 2
fi

# Summary. Results are JSON Lines; the sink writes the keys in sorted order,
# so the first "ms": and "worker": in a line are the real keys (a quote inside
# a string value is always escaped).
vent_line=$(tail -n 1 "$dir/ventilator.out")
wall=$(sed -n 's/.* done: .*, \([0-9][0-9.]*\) s (.*/\1/p' "$sink_log" | tail -n 1)
echo
echo "${vent_line:-ventilator printed no summary (exit status $vent_status); see $vent_log}"
[[ -s $results ]] || {
    echo "no results recorded; logs in $dir"
    exit "$vent_status"
}
awk -v workers="$workers" -v wall="$wall" '
{
    ms = 0
    if (match($0, /"ms":[-+.0-9eE]+/)) ms = substr($0, RSTART + 5, RLENGTH - 5) + 0
    w = "?"
    if (match($0, /"worker":"([^"\\]|\\.)*"/)) w = substr($0, RSTART + 10, RLENGTH - 11)
    if (!(w in n)) order[++nw] = w
    n[w]++
    busy[w] += ms
    sum += ms
    tasks++
    if ($0 ~ /"status":"failed"/) failed++
}
END {
    ideal = sum / 1000 / workers
    printf "work:       %d tasks, %d failed, %.1f ms of task time in all\n", tasks, failed, sum
    if (wall == "") {
        printf "makespan:   ideal %.3f s (work / %d workers); the sink logged no wall time\n", ideal, workers
    } else if (ideal < 0.001) {
        printf "makespan:   ideal %.3f s (work / %d workers), sink wall time %.3f s\n", ideal, workers, wall
    } else {
        printf "makespan:   ideal %.3f s (work / %d workers), sink wall time %.3f s, ratio %.3f\n", \
            ideal, workers, wall, wall / ideal
    }
    if (nw <= 8) {
        printf "per worker:"
        for (i = 1; i <= nw; i++) {
            sep = (i == 1) ? " " : ((i - 1) % 4 == 0) ? ",\n            " : ", "
            printf "%s%s %d (%.0f ms)", sep, order[i], n[order[i]], busy[order[i]]
        }
        printf "\n"
    } else {
        lo = hi = order[1]
        for (i = 2; i <= nw; i++) {
            if (n[order[i]] < n[lo]) lo = order[i]
            if (n[order[i]] > n[hi]) hi = order[i]
        }
        printf "per worker: %d workers took tasks: %.1f on average, %d (%s) to %d (%s)\n", \
            nw, tasks / nw, n[lo], lo, n[hi], hi
    }
    if (nw < workers) printf "            %d worker(s) took no task\n", workers - nw
}' "$results"
echo "results:    $results"
echo "logs:       $dir/{sink,ventilator,worker-N}.log"
exit "$vent_status"
