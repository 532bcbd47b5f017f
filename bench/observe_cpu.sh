#!/usr/bin/env bash
# The CPU cost of watching a job (issue 8): the sink's and the ventilator's
# user + system CPU seconds for N echo tasks (credit dispatch, 2 workers),
# "plain" (no --http; the ventilator's stderr a file) against "observed"
# (the sink's --http endpoint scraped once a second, /metrics and /status;
# the ventilator on a pseudo-terminal drawing its live progress line), in
# interleaved pairs. CPU time, unlike throughput, is not moved by other load
# on the machine by more than the few per cent being measured.
#
#   bench/observe_cpu.sh [N [PAIRS [BIN]]]     # default 2000000 4 build-bench/bin
#
# One line per run: MODE SINK_CPU_S VENTILATOR_CPU_S lines=RECORDED
# scrapes=N, then the medians.
set -euo pipefail
n=${1:-2000000} pairs=${2:-4}
bin=${3:-$(dirname "$0")/../build-bench/bin}
for tool in curl script; do
    command -v "$tool" >/dev/null || { echo "observe_cpu.sh: needs $tool" >&2; exit 2; }
done

# run MODE: one job; prints its line.
run() {
    local mode=$1 d port spid scraper='' p
    d=$(mktemp -d)
    p=$((20000 + RANDOM % 20000))
    local ep=(--results "tcp://127.0.0.1:$p" --control "tcp://127.0.0.1:$((p + 1))")
    local http=()
    [[ $mode == observed ]] && http=(--http 127.0.0.1:0)
    /usr/bin/time -f '%U %S' -o "$d/sink.time" "$bin/zfarm-sink" "${ep[@]}" -o "$d/r.jsonl" \
        --once "${http[@]}" 2>"$d/sink.log" &
    spid=$!
    if [[ $mode == observed ]]; then
        for _ in $(seq 100); do
            grep -q 'http: listening' "$d/sink.log" && break
            sleep 0.1
        done
        port=$(grep -o 'http://127.0.0.1:[0-9]*' "$d/sink.log" | head -1 | sed 's/.*://')
        (while kill -0 "$spid" 2>/dev/null; do
            curl -sf -o /dev/null "http://127.0.0.1:$port/metrics" &&
                curl -sf -o /dev/null "http://127.0.0.1:$port/status" && echo x >>"$d/scrapes"
            sleep 1
        done) &
        scraper=$!
    fi
    for _ in 1 2; do
        "$bin/zfarm-worker" --tasks "tcp://127.0.0.1:$((p + 2))" --credit "tcp://127.0.0.1:$((p + 3))" \
            "${ep[@]}" --exit-when-done -q &
    done
    local vent=(/usr/bin/time -f '%U %S' -o "$d/vent.time" "$bin/zfarm-ventilator" --dispatch credit
        --tasks "tcp://127.0.0.1:$((p + 2))" --credit "tcp://127.0.0.1:$((p + 3))" "${ep[@]}"
        --echo "$n" --job observe)
    if [[ $mode == observed ]]; then
        script -qec "$(printf '%q ' "${vent[@]}")" "$d/tty" >/dev/null
    else
        "${vent[@]}" >/dev/null 2>"$d/vent.err"
    fi
    wait "$spid"
    [[ -z $scraper ]] || kill "$scraper" 2>/dev/null || true
    wait
    local s v
    s=$(awk '{print $1 + $2}' "$d/sink.time")
    v=$(awk '{print $1 + $2}' "$d/vent.time")
    echo "$mode $s $v lines=$(wc -l <"$d/r.jsonl") scrapes=$( (wc -l <"$d/scrapes") 2>/dev/null || echo 0)"
    rm -rf "$d"
}

out=$(mktemp)
for ((i = 0; i < pairs; i++)); do
    run plain | tee -a "$out"
    run observed | tee -a "$out"
done
median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
for mode in plain observed; do
    echo "$mode sink_cpu_s=$(awk -v m="$mode" '$1 == m {print $2}' "$out" | median)" \
        "ventilator_cpu_s=$(awk -v m="$mode" '$1 == m {print $3}' "$out" | median) tasks=$n"
done
rm -f "$out"
