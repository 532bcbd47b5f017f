#!/usr/bin/env bash
# What zfarm spends per command beside the command itself (issue 5's exec
# figure): each process's own CPU time over one job of N `true` commands on
# a running farm (a sink and 2 workers up and waiting; credit dispatch, as
# bench.sh's exec benchmark), and the commands' own CPU time (what the
# workers reaped). The sink's and the workers' figures are read from
# /proc/PID/stat once the ventilator has exited (their threads only, not
# their children; their few idle milliseconds before the job included), the
# ventilator's from /usr/bin/time.
#
#   bench/exec_cpu.sh [N [RUNS [BIN]]]     # default 2000 3 build-bench/bin
#
# One line per run, CPU milliseconds per command: sink, ventilator, the two
# workers together, the commands; and the job's wall seconds. Then the
# medians.
set -euo pipefail
n=${1:-2000} runs=${2:-3}
bin=${3:-$(dirname "$0")/../build-bench/bin}
[[ -x /usr/bin/time ]] || {
    echo "exec_cpu.sh: needs /usr/bin/time (Debian's time)" >&2
    exit 2
}
tick=$(getconf CLK_TCK)

pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT

# own_and_children PID: "OWN CHILDREN" CPU ticks (utime + stime, cutime +
# cstime). The command name may hold spaces: fields count from its ')'.
own_and_children() {
    awk '{ sub(/.*\) /, ""); print $12 + $13, $14 + $15 }' "/proc/$1/stat"
}

run() {
    local d p t0 t1 sink w ep i
    d=$(mktemp -d)
    p=$((20000 + RANDOM % 20000))
    ep=(--results "tcp://127.0.0.1:$p" --control "tcp://127.0.0.1:$((p + 1))")
    seq 1 "$n" >"$d/input"
    "$bin/zfarm-sink" "${ep[@]}" -o "$d/r.jsonl" 2>"$d/sink.log" &
    sink=$!
    w=()
    for i in 1 2; do
        "$bin/zfarm-worker" --credit "tcp://127.0.0.1:$((p + 3))" "${ep[@]}" --allow-exec \
            --id "w$i" 2>"$d/w$i.log" &
        w+=($!)
    done
    pids=("$sink" "${w[@]}")
    for i in 1 2; do
        until grep -q ' up: ' "$d/w$i.log" 2>/dev/null; do
            kill -0 "${w[i - 1]}" 2>/dev/null || {
                echo "exec_cpu.sh: a worker did not start: $(tail -n 3 "$d/w$i.log")" >&2
                exit 1
            }
            sleep 0.02
        done
    done
    t0=$EPOCHREALTIME
    /usr/bin/time -f '%U %S' -o "$d/vent.time" "$bin/zfarm-ventilator" --dispatch credit \
        --tasks "tcp://127.0.0.1:$((p + 2))" --credit "tcp://127.0.0.1:$((p + 3))" "${ep[@]}" \
        --input - -q -- true <"$d/input" >/dev/null 2>"$d/vent.log"
    t1=$EPOCHREALTIME
    own_and_children "$sink" >"$d/sink.cpu"
    for i in 0 1; do own_and_children "${w[i]}"; done >"$d/workers.cpu"
    kill "${pids[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
    pids=()
    awk -v n="$n" -v tick="$tick" -v t0="$t0" -v t1="$t1" '
        FILENAME ~ /vent.time$/ { vent = ($1 + $2) * 1000 }
        FILENAME ~ /sink.cpu$/ { sink = $1 * 1000 / tick }
        FILENAME ~ /workers.cpu$/ { own += $1 * 1000 / tick; cmds += $2 * 1000 / tick }
        END { printf "run sink_ms=%.3f ventilator_ms=%.3f workers_ms=%.3f commands_ms=%.3f wall_s=%.3f\n",
                  sink / n, vent / n, own / n, cmds / n, t1 - t0 }' \
        "$d/vent.time" "$d/sink.cpu" "$d/workers.cpu"
    rm -rf "$d"
}

out=$(mktemp)
for ((r = 0; r < runs; r++)); do run | tee -a "$out"; done
median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
line="exec_cpu commands=$n"
for k in sink_ms ventilator_ms workers_ms commands_ms wall_s; do
    line+=" $k=$(grep -o "$k=[0-9.]*" "$out" | cut -d= -f2 | median)"
done
echo "$line runs=$runs (per command)"
rm -f "$out"
