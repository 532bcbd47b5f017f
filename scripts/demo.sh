#!/usr/bin/env bash
# Runs the whole pipeline on this machine: a sink, a ventilator and N workers
# on free localhost ports, the ZeroMQ Guide's workload by default, then prints
# a one-screen summary of how well the work was balanced.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: scripts/demo.sh [-j N] [--timeout S] [-h|--help] [VENTILATOR_ARGS...]

Runs zfarm on localhost with scripts/run-local.sh: a sink (--once), N workers
(--exit-when-done) and a ventilator, each on free ports picked at random,
with logs and results in a fresh temporary directory. Builds the binaries
first (scripts/setup.sh) if they are missing.

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

here=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
dir=$(mktemp -d "${TMPDIR:-/tmp}/zfarm-demo.XXXXXX")
printf 'demo.sh: %d workers, ventilator %s\n' "$workers" "${vent_args[*]}"

# The job itself: scripts/run-local.sh starts and watches every component.
vent_status=0
"$here/run-local.sh" -j "$workers" --timeout "$timeout" --dir "$dir" "${vent_args[@]}" \
    >"$dir/ventilator.out" 2>"$dir/run-local.log" || vent_status=$?
results=$dir/results.jsonl
sink_log=$dir/sink.log
if ((vent_status == 2)) || ! grep -q '^job ' "$dir/ventilator.out"; then
    cat "$dir/ventilator.out" >&2
    grep -v ' ventilator info ' "$dir/run-local.log" >&2 || true
    exit "$vent_status"
fi

# Summary. Results are JSON Lines; the sink writes the keys in sorted order,
# so the first "ms": and "worker": in a line are the real keys (a quote inside
# a string value is always escaped).
vent_line=$(tail -n 1 "$dir/ventilator.out")
wall=$(sed -n 's/.* done: .*, \([0-9][0-9.]*\) s (.*/\1/p' "$sink_log" | tail -n 1)
echo
echo "${vent_line:-ventilator printed no summary (exit status $vent_status); see $dir}"
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
