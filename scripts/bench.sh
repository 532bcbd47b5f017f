#!/usr/bin/env bash
# zfarm's end-to-end benchmarks, each against baselines measured in the same
# run (this machine is shared and noisy: only ratios are comparable between
# runs). Prints fixed key=value lines and writes bench/results/NAME.json.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: scripts/bench.sh [OPTIONS]

Builds this tree in Release (build-bench/: the three programs and the
benchmarks) and runs:

  throughput  TASKS echo tasks (32-byte payloads): zfarm (a sink writing
         JSON Lines to a file, 2 workers, a ventilator --echo), in push
         and in credit dispatch; baseline (a), bench/relay_baseline.cpp:
         raw libzmq PUSH -> relays -> PULL with zfarm's msgpack codec at
         every hop, 1 and 2 relays, over tcp and ipc; baseline (b),
         bench/baselines/guide_pipeline.py: the ZeroMQ Guide's pipeline in
         Python (2 workers, tcp); baseline (c),
         bench/baselines/joinable_queue.py: the seed's washer and dryers on
         a multiprocessing.JoinableQueue (2 dryers; JQ_TASKS tasks, it is
         slow). zfarm's rate is TASKS / (end of the last task - start of
         the first), from the results' start and ms fields. zfarm runs
         again with CURVE on every socket (keys from zfarm-keygen; sink and
         ventilator share one pair): the "curve" rates and their ratio to
         the same mode without it. And "observed" (issue 8): the
         ventilator's live progress line drawn on a pseudo-terminal
         (script(1); checked to be there) and the sink's status endpoint
         on (--http 127.0.0.1:0), scraped once a second for the whole run
         by bench/status_scraper.py (GET /metrics and /status, each
         checked; a failed scrape fails the run; the run line gives their
         count): the "observed" rates and their ratio to the same mode with
         both off (target: 0.97 or more). Each repetition runs plain, curve
         and observed zfarm in turn, in both modes.
  micro  the Google Benchmark micro-benchmarks (bench/micro_bench.cpp):
         codec, ledger, dedupe set, result writer; their JSON report goes
         to bench/results/micro.json.
  balance  makespan against its lower bound, max(longest task, total / 4),
         on 4 workers: "mixed" (200 sleep tasks, 10 % of 200 ms and 90 % of
         5 ms, interleaved by a fixed seed) and "guide" (100 sleeps of 1-100
         ms, the ZeroMQ Guide's workload), in credit and push dispatch,
         beside baseline (b) on the same tasks and the greedy makespan
         (each task, in order, to the first free worker) computed from the
         recorded task times. zfarm's makespan runs from the first task's
         start to the last one's end, as recorded.
  latency  one task at a time (--window 1, 1 worker, echo): p50 and p99 of
         the round trip (from one task's start to the next one's, as
         recorded), beside baseline (a) with --latency (one relay; the
         sink sends each id back to the source), over tcp.
  memory   peak resident memory of each process on a long echo stream
         (MEM_TASKS, 2 workers, push dispatch), sampled every second:
         after warm-up (a tenth of the run), at its peak, and at the end.
  exec   TASKS `true` commands, 2 at a time, on this machine: xargs -P 2,
         GNU parallel -j 2, and zfarm (a sink, 2 workers with --allow-exec,
         and a ventilator --dispatch credit --input FILE -- true). The time
         is the wall clock of the xargs or parallel command, and of the
         ventilator from its start to its exit: "zfarm" is a job on a
         running farm (the sink and the workers are up before, as they
         wait for jobs; the ventilator is the job's command, like xargs),
         "zfarm-cold" starts the workers with the ventilator (once it
         listens), so their start-up is in the time too. Tools alternate
         within each repetition.

Options:
  --only LIST        benchmarks to run, comma-separated (default: all)
  -n N               repetitions of each measurement (default 5)
  --echo N           tasks of the throughput benchmark (default 1000000)
  --jq-tasks N       tasks of baseline (c) (default 100000)
  --exec-tasks N     commands of the exec benchmark (default 2000)
  --mem-tasks N      tasks of the memory benchmark (default 10000000)
  --quick            small counts and one repetition: a smoke test that
                     every benchmark runs and prints its figures (ctest)
  --bin DIR          use the programs in DIR instead of building
                     build-bench/ (with --quick: the test build's)
  --keep             keep the temporary directory (logs, results)
  -j N               build jobs (default: nproc)
  -h, --help         show this help

Output (each on one line; times in seconds, rates in tasks/s, medians over
the repetitions):

  run throughput what=zfarm-credit i=1 tps=131000
  run throughput what=zfarm-push-observed i=1 tps=127000 scrapes=3
  throughput tasks=1000000 jq_tasks=100000 push_tps=... credit_tps=...
      push_curve_tps=... credit_curve_tps=... push_observed_tps=...
      credit_observed_tps=...
      relay1_tcp_tps=... relay2_tcp_tps=... relay1_ipc_tps=...
      relay2_ipc_tps=... guide_tps=... jq_tps=...
      push_vs_relay2=0.41 credit_vs_relay2=... push_vs_guide=...
      credit_vs_guide=... push_vs_jq=... credit_vs_jq=...
      push_curve_vs_push=0.87 credit_curve_vs_credit=...
      push_observed_vs_push=0.99 credit_observed_vs_credit=... n=5
  balance workload=mixed lower_bound_s=1.148 credit_ratio=1.05
      push_ratio=1.42 guide_ratio=1.51 greedy_ratio=1.11 target=1.15 n=5
  latency round_trips=1800 credit_p50_us=... credit_p99_us=...
      push_p50_us=... push_p99_us=... raw_p50_us=... raw_p99_us=...
      credit_vs_raw_p50=... n=5
  memory tasks=10000000 sink_warm_kb=... sink_peak_kb=... sink_end_kb=...
      (and ventilator_, worker_) tps=...
  run exec tool=zfarm i=1 seconds=2.95
  exec tasks=2000 xargs_s=2.41 parallel_s=9.80 zfarm_s=2.95
      zfarm_cold_s=3.05 zfarm_vs_xargs=1.224 parallel_vs_zfarm=3.322
      zfarm_cold_vs_xargs=1.266 n=5

Results also go to bench/results/NAME.json. A tool that is not installed is
reported as "-". Exit status: 0 done, 1 a run failed, 2 bad usage.
Environment: TMPDIR; ccache is used when present.
EOF
}

die() {
    printf 'bench.sh: %s\n' "$*" >&2
    exit 2
}

only='' reps=5 exec_tasks=2000 echo_tasks=1000000 jq_tasks=100000 mem_tasks=10000000
keep=0 quick=0 bin=''
jobs=$(nproc 2>/dev/null || echo 2)
need_arg() { (($1 >= 2)) || die "$2 needs a value"; }
while (($#)); do
    case "$1" in
    --only) need_arg $# "$1" && only=$2 && shift ;;
    -n) need_arg $# "$1" && reps=$2 && shift ;;
    --exec-tasks) need_arg $# "$1" && exec_tasks=$2 && shift ;;
    --echo) need_arg $# "$1" && echo_tasks=$2 && shift ;;
    --jq-tasks) need_arg $# "$1" && jq_tasks=$2 && shift ;;
    --mem-tasks) need_arg $# "$1" && mem_tasks=$2 && shift ;;
    --quick) quick=1 ;;
    --bin) need_arg $# "$1" && bin=$2 && shift ;;
    --keep) keep=1 ;;
    -j) need_arg $# "$1" && jobs=$2 && shift ;;
    -h | --help)
        usage
        exit 0
        ;;
    *) die "unknown option '$1' (see --help)" ;;
    esac
    shift
done
is_count() { [[ $1 =~ ^[1-9][0-9]{0,7}$ ]]; }
is_count "$reps" || die "-n takes a positive number, not '$reps'"
if ((quick)); then
    reps=1 exec_tasks=50 echo_tasks=20000 jq_tasks=2000 mem_tasks=50000
fi
is_count "$mem_tasks" || die "--mem-tasks takes a positive number, not '$mem_tasks'"
is_count "$exec_tasks" || die "--exec-tasks takes a positive number, not '$exec_tasks'"
is_count "$echo_tasks" || die "--echo takes a positive number, not '$echo_tasks'"
is_count "$jq_tasks" || die "--jq-tasks takes a positive number, not '$jq_tasks'"
if [[ -n $bin ]]; then
    [[ -x $bin/zfarm-sink ]] || die "--bin: $bin has no zfarm-sink"
    bin=$(readlink -f "$bin")
fi
is_count "$jobs" || die "-j takes a positive number, not '$jobs'"
known=(throughput micro balance latency memory exec)
selected=("${known[@]}")
if [[ -n $only ]]; then
    IFS=, read -ra selected <<<"$only"
    for b in "${selected[@]}"; do
        [[ " ${known[*]} " == *" $b "* ]] || die "--only: unknown benchmark '$b' (known: ${known[*]})"
    done
fi
wanted() { [[ " ${selected[*]} " == *" $1 "* ]]; }

here=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
cd "$here/.."
repo=$PWD
work=$(mktemp -d "${TMPDIR:-/tmp}/zfarm-bench.XXXXXX")

# shellcheck source=scripts/lib/pipeline.sh
source "$here/lib/pipeline.sh"
cleanup() {
    local status=$?
    ((${#pids[@]})) && stop_pids "${pids[@]}"
    if ((keep)); then
        echo "bench.sh: logs and results kept in $work" >&2
    else
        rm -rf "$work"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# --- build ------------------------------------------------------------------

rev=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$repo" diff --quiet HEAD 2>/dev/null || rev+="+dirty"
if [[ -z $bin ]]; then
    launcher=()
    command -v ccache >/dev/null 2>&1 && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
    echo "bench.sh: building $rev in $repo/build-bench (Release)" >&2
    if ! timeout 1800 cmake -S "$repo" -B "$repo/build-bench" -DCMAKE_BUILD_TYPE=Release \
        -DZFARM_BUILD_TESTS=OFF -DZFARM_BUILD_BENCHMARKS=ON "${launcher[@]}" \
        >"$work/build.log" 2>&1 ||
        ! timeout 1800 cmake --build "$repo/build-bench" -j "$jobs" --target zfarm-sink \
            zfarm-worker zfarm-ventilator zfarm-keygen zfarm-bench-relay >>"$work/build.log" 2>&1; then
        tail -n 30 "$work/build.log" >&2
        die "the build failed; log above"
    fi
    # Only built where Google Benchmark is installed (the micro section says so).
    timeout 1800 cmake --build "$repo/build-bench" -j "$jobs" --target zfarm-micro-bench \
        >>"$work/build.log" 2>&1 || true
    bin=$repo/build-bench/bin
fi
python=/usr/bin/python3 # Debian's, with python3-zmq (not a pyenv shim)
[[ -x $python ]] || python=python3
machine="nproc=$(nproc) cpu=\"$(sed -n '/^model name/{s/^model name[[:space:]]*: //p;q}' \
    /proc/cpuinfo)\" kernel=$(uname -r)"
printf 'bench rev=%s %s date=%s\n' "$rev" "$machine" "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
results_dir=$repo/bench/results
((quick)) && results_dir=$work/results # a smoke test leaves the real ones alone
mkdir -p "$results_dir"

# --- arithmetic -------------------------------------------------------------

# median VALUE...: the median of the numeric values ("-" ignored), or "-"
median() {
    printf '%s\n' "$@" | sort -g | awk '/^[0-9.]+$/ { v[++n] = $1 } END {
        if (n == 0) { print "-"; exit }
        printf "%.3f\n", (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2 }'
}
# ratio A B: A / B to 3 decimals, or "-"
ratio() {
    if [[ $1 == - || $2 == - ]]; then echo -; else awk -v a="$1" -v b="$2" 'BEGIN {
        printf "%.3f\n", a / b }'; fi
}
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", b - a }'; }
failed_runs=0

# perf_rate FILE: the "throughput: N [msg/s]" figure of a perf-style report
perf_rate() { sed -n 's/^throughput: \([0-9][0-9]*\) .*/\1/p' "$1" | tail -n 1 | grep . || echo -; }
# json_num VALUE: VALUE, or null for "-"
json_num() { if [[ $1 == - ]]; then echo null; else echo "$1"; fi; }

# --- throughput -------------------------------------------------------------

# throughput_run WHAT I: one run of WHAT (zfarm-{push,credit}[-curve|-observed],
# relay{1,2}-{tcp,ipc}, guide, jq); prints a "run throughput" line and appends
# its rate to tput[WHAT].
throughput_run() {
    local what=$1 rep=$2 dir rate=- n relays transport error=failed extra=''
    dir=$work/throughput-$what-$rep
    mkdir -p "$dir"
    case $what in
    zfarm-*)
        # worker_args, vent_tty and before_workers are local here:
        # start_pipeline sees them, later runs do not.
        local mode=${what#zfarm-} sink_extra=() vent_extra=() worker_args=()
        local vent_tty='' before_workers=() scraper_pid=''
        if [[ $mode == *-curve ]]; then
            mode=${mode%-curve}
            curve_keys
            sink_extra=(--curve-secret "$keys/head.key" --allow "$keys/allow")
            vent_extra=(--curve-secret "$keys/head.key" --allow "$keys/allow"
                --curve-server-key "$keys/head.pub")
            worker_args=(--curve-secret "$keys/worker.key" --curve-server-key "$keys/head.pub")
        fi
        if [[ $mode == *-observed ]]; then
            mode=${mode%-observed}
            sink_extra=(--http 127.0.0.1:0)
            vent_tty=$dir/ventilator.tty
            before_workers=(start_scraper "$dir")
        fi
        if start_pipeline "$bin" "$dir" 2 "${sink_extra[@]}" -- --dispatch "$mode" \
            "${vent_extra[@]}" --echo "$echo_tasks" && finish_pipeline 600; then
            read -r n rate < <(awk '
                {
                    ms = 0; st = 0
                    if (match($0, /"ms":[-+.0-9eE]+/)) ms = substr($0, RSTART + 5, RLENGTH - 5) + 0
                    if (match($0, /"start":[-+.0-9eE]+/)) st = substr($0, RSTART + 8, RLENGTH - 8) + 0
                    if (n == 0 || st < first) first = st
                    if (st + ms / 1000 > last) last = st + ms / 1000
                    n++
                }
                END { if (n && last > first) printf "%d %.0f\n", n, n / (last - first); else print "0 -" }' \
                "$dir/results.jsonl")
            ((n == echo_tasks)) || rate=-
        fi
        if [[ -n $vent_tty ]]; then
            [[ -n $scraper_pid ]] && stop_pids "$scraper_pid"
            [[ $rate == - ]] || observed_checks "$dir" || rate=-
        fi
        ;;
    relay*)
        relays=${what#relay}
        relays=${relays%%-*}
        transport=${what#*-}
        timeout 600 "$bin/zfarm-bench-relay" --transport "$transport" --relays "$relays" \
            --count "$echo_tasks" >"$dir/out" 2>&1 && rate=$(perf_rate "$dir/out")
        ;;
    guide)
        timeout 600 "$python" "$repo/bench/baselines/guide_pipeline.py" --workers 2 \
            --count "$echo_tasks" >"$dir/out" 2>&1 && rate=$(perf_rate "$dir/out")
        ;;
    jq)
        timeout 600 "$python" "$repo/bench/baselines/joinable_queue.py" --workers 2 \
            --count "$jq_tasks" >"$dir/out" 2>&1 && rate=$(perf_rate "$dir/out")
        ;;
    esac
    if [[ $rate == - ]]; then
        echo "run throughput what=$what i=$rep error=$error dir=$dir"
        failed_runs=$((failed_runs + 1))
        keep=1
    else
        echo "run throughput what=$what i=$rep tps=$rate$extra"
        ((keep)) || rm -rf "$dir"
    fi
    tput[$what]+=" $rate"
}

# start_scraper DIR: bench/status_scraper.py on the status endpoint of the
# sink logging to DIR/sink.log, in the background (scraper_pid); returns once
# it has scraped once, so it watches the job from its first task.
start_scraper() {
    local dir=$1 i
    launch scraper "$python" "$repo/bench/status_scraper.py" --sink-log "$dir/sink.log" \
        --out "$dir/scrapes" 2>"$dir/scraper.log" &
    scraper_pid=$!
    pids+=("$scraper_pid")
    for ((i = 0; i < 300; i++)); do
        [[ -s $dir/scrapes ]] && return 0
        kill -0 "$scraper_pid" 2>/dev/null || break
        sleep 0.05
    done
    echo "bench.sh: the status scraper did not start: $(tail -n 1 "$dir/scraper.log")" >&2
    return 1
}

# observed_checks DIR: whether an observed run was observed: the live
# progress line drawn (redrawn in place, the last time at 100 %, "JOB
# N/N 100.0%") and every scrape good. Sets error and extra (the scrapes)
# for throughput_run's line.
observed_checks() {
    local dir=$1 scrapes=0 bad=0 redraw=$'\r\e\\[K' # carriage return, erase the line
    [[ -s $dir/scrapes ]] && read -r scrapes bad <"$dir/scrapes"
    extra=" scrapes=$scrapes"
    if ((scrapes == 0 || bad > 0)); then
        error='scrapes-failed'
        echo "bench.sh: $bad of $scrapes scrape(s) failed: $(tail -n 1 "$dir/scraper.log")" >&2
        return 1
    fi
    if ! grep -qE "${redraw}[^ ]+ ([0-9,]+)/\\1 100\\.0% " "$dir/ventilator.tty"; then
        error='no-progress-line'
        echo "bench.sh: no live progress line in $dir/ventilator.tty" >&2
        return 1
    fi
}

# curve_keys: once, a key pair for the sink and ventilator (head), one for
# the workers, and the allow-list of both, under $keys.
curve_keys() {
    keys=$work/keys
    [[ -f $keys/head.key ]] && return
    mkdir -p "$keys/allow"
    "$bin/zfarm-keygen" "$keys/head" >/dev/null
    "$bin/zfarm-keygen" "$keys/worker" >/dev/null
    cp "$keys/head.pub" "$keys/worker.pub" "$keys/allow/"
}

if wanted throughput; then
    declare -A tput med
    runs=(zfarm-push zfarm-credit zfarm-push-curve zfarm-credit-curve
        zfarm-push-observed zfarm-credit-observed
        relay1-tcp relay2-tcp relay1-ipc relay2-ipc guide jq)
    for ((rep = 1; rep <= reps; rep++)); do
        for what in "${runs[@]}"; do throughput_run "$what" "$rep"; done
    done
    line="throughput tasks=$echo_tasks jq_tasks=$jq_tasks"
    rates=''
    for what in "${runs[@]}"; do
        # shellcheck disable=SC2086 # a list of numbers
        med[$what]=$(median ${tput[$what]} | awk '{ if ($1 == "-") print; else printf "%.0f\n", $1 }')
        key=${what#zfarm-}
        line+=" ${key//-/_}_tps=${med[$what]}"
        rates+="\"$key\": $(json_num "${med[$what]}"), "
    done
    pairs=''
    for mode in push credit; do
        for base in relay2-tcp guide jq; do
            r=$(ratio "${med[zfarm-$mode]}" "${med[$base]}")
            key="${mode}_vs_${base%-tcp}"
            line+=" $key=$r"
            pairs+="\"$key\": $(json_num "$r"), "
        done
    done
    for variant in curve observed; do
        for mode in push credit; do
            r=$(ratio "${med[zfarm-$mode-$variant]}" "${med[zfarm-$mode]}")
            key="${mode}_${variant}_vs_${mode}"
            line+=" $key=$r"
            pairs+="\"$key\": $(json_num "$r"), "
        done
    done
    echo "$line n=$reps"
    cat >"$results_dir/throughput.json" <<EOF
{"benchmark": "throughput", "rev": "$rev", "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
 "machine": "$(printf '%s' "$machine" | sed 's/"/\\"/g')", "tasks": $echo_tasks,
 "jq_tasks": $jq_tasks, "repetitions": $reps, "median_tasks_per_second": {${rates%, }},
 "ratios": {${pairs%, }},
 "targets": {"vs_relay2_at_least": 0.5, "vs_guide_at_least": 2, "vs_jq_at_least": 10,
             "observed_vs_plain_at_least": 0.97}}
EOF
fi

# --- micro ------------------------------------------------------------------

if wanted micro; then
    if [[ -x $bin/zfarm-micro-bench ]]; then
        min_time=0.5
        ((quick)) && min_time=0.01
        if timeout 900 "$bin/zfarm-micro-bench" --benchmark_min_time="$min_time" \
            --benchmark_out="$results_dir/micro.json" --benchmark_out_format=json \
            >"$work/micro.out" 2>&1; then
            awk '/^BM_/ { printf "micro name=%s ns=%s cpu_ns=%s\n", $1, $2, $4 }' "$work/micro.out"
        else
            cat "$work/micro.out" >&2
            echo "micro error=failed"
            failed_runs=$((failed_runs + 1))
        fi
    else
        echo "micro error=not-built (Google Benchmark, Debian's libbenchmark-dev, is missing)"
        failed_runs=$((failed_runs + 1))
    fi
fi

# --- balance ----------------------------------------------------------------

# workload NAME: one sleep in milliseconds per line, from a fixed seed
# (Park-Miller: the same numbers from any awk).
workload() {
    case $1 in
    mixed) # 200 tasks: 20 of 200 ms at seeded places, the rest 5 ms
        awk 'BEGIN { x = 7; n = 200; for (i = 0; i < n; i++) v[i] = 5
            for (k = 0; k < 20; ) { x = (x * 16807) % 2147483647; i = x % n
                if (v[i] == 5) { v[i] = 200; k++ } }
            for (i = 0; i < n; i++) print v[i] }' ;;
    guide) # 100 tasks of 1-100 ms
        awk 'BEGIN { x = 11; for (i = 0; i < 100; i++) {
            x = (x * 16807) % 2147483647; print 1 + x % 100 } }' ;;
    esac
}
# makespan_stats RESULTS WORKERS: "MAKESPAN LOWER_BOUND GREEDY" in seconds,
# from the recorded start, ms and id of each result.
makespan_stats() {
    awk -v w="$2" '
        {
            ms = 0; st = 0; id = 0
            if (match($0, /"ms":[-+.0-9eE]+/)) ms = substr($0, RSTART + 5, RLENGTH - 5) + 0
            if (match($0, /"start":[-+.0-9eE]+/)) st = substr($0, RSTART + 8, RLENGTH - 8) + 0
            if (match($0, /"id":[0-9]+/)) id = substr($0, RSTART + 5, RLENGTH - 5) + 0
            if (n == 0 || st < first) first = st
            if (st + ms / 1000 > last) last = st + ms / 1000
            d[id] = ms / 1000; sum += ms / 1000; if (ms / 1000 > longest) longest = ms / 1000
            if (id > maxid) maxid = id
            n++
        }
        END {
            lb = sum / w; if (longest > lb) lb = longest
            for (k = 0; k < w; k++) free[k] = 0
            for (i = 0; i <= maxid; i++) {
                b = 0; for (k = 1; k < w; k++) if (free[k] < free[b]) b = k
                free[b] += d[i]
            }
            g = 0; for (k = 0; k < w; k++) if (free[k] > g) g = free[k]
            printf "%.4f %.4f %.4f\n", last - first, lb, g
        }' "$1"
}

if wanted balance; then
    for wl in mixed guide; do
        workload "$wl" >"$work/$wl.ms"
        awk '{ printf "{\"kind\":\"sleep\",\"payload\":\"%d\"}\n", $1 }' "$work/$wl.ms" \
            >"$work/$wl.jsonl"
        declare -A bal=()
        for ((rep = 1; rep <= reps; rep++)); do
            for mode in credit push; do
                dir=$work/balance-$wl-$mode-$rep
                mkdir -p "$dir"
                if start_pipeline "$bin" "$dir" 4 -- --dispatch "$mode" \
                    --tasks-file "$work/$wl.jsonl" && finish_pipeline 300; then
                    read -r span lb greedy < <(makespan_stats "$dir/results.jsonl" 4)
                    r=$(ratio "$span" "$lb")
                    echo "run balance workload=$wl what=$mode i=$rep makespan_s=$span" \
                        "lower_bound_s=$lb ratio=$r greedy_ratio=$(ratio "$greedy" "$lb")"
                    bal[$mode]+=" $r" bal[greedy]+=" $(ratio "$greedy" "$lb")" bal[lb]+=" $lb"
                    ((keep)) || rm -rf "$dir"
                else
                    echo "run balance workload=$wl what=$mode i=$rep error=failed dir=$dir"
                    failed_runs=$((failed_runs + 1))
                fi
            done
            if timeout 300 "$python" "$repo/bench/baselines/guide_pipeline.py" --workers 4 \
                --sleep-file "$work/$wl.ms" >"$work/guide.out" 2>&1; then
                span=$(sed -n 's/^makespan: \([0-9.]*\) .*/\1/p' "$work/guide.out")
                # The same lower bound: the tasks' nominal times.
                lb=$(awk '{ s += $1; if ($1 > m) m = $1 } END { l = s / 4; if (m > l) l = m
                    printf "%.4f\n", l / 1000 }' "$work/$wl.ms")
                r=$(ratio "$span" "$lb")
                echo "run balance workload=$wl what=guide i=$rep makespan_s=$span" \
                    "lower_bound_s=$lb ratio=$r"
                bal[guide]+=" $r"
            else
                echo "run balance workload=$wl what=guide i=$rep error=failed"
                failed_runs=$((failed_runs + 1))
            fi
        done
        target=1.15
        [[ $wl == guide ]] && target=1.05
        # shellcheck disable=SC2086 # lists of numbers
        echo "balance workload=$wl lower_bound_s=$(median ${bal[lb]:-})" \
            "credit_ratio=$(median ${bal[credit]:-}) push_ratio=$(median ${bal[push]:-})" \
            "guide_ratio=$(median ${bal[guide]:-}) greedy_ratio=$(median ${bal[greedy]:-})" \
            "target=$target n=$reps" | tee -a "$work/balance.lines"
    done
    awk 'BEGIN { printf "{\"benchmark\": \"balance\", \"workloads\": [" }
        { printf "%s{", (NR > 1 ? ", " : ""); sep = ""
          for (i = 2; i <= NF; i++) { split($i, kv, "="); v = kv[2]
              if (v == "-") v = "null"; else if (v !~ /^[0-9.]+$/) v = "\"" v "\""
              printf "%s\"%s\": %s", sep, kv[1], v; sep = ", " }
          printf "}" }
        END { print "]}" }' "$work/balance.lines" >"$results_dir/balance.json"
fi

# --- latency ----------------------------------------------------------------

# round_trips RESULTS: "P50 P99" in microseconds of the gaps between
# consecutive task starts (one task in flight at a time), the first tenth
# left out as warm-up.
round_trips() {
    sed -n 's/.*"start":\([-+.0-9eE]*\).*/\1/p' "$1" | sort -g |
        awk '{ if (NR > 1) print ($1 - prev) * 1e6; prev = $1 }' >"$1.gaps"
    awk -v n="$(wc -l <"$1.gaps")" 'NR > n / 10' "$1.gaps" | sort -g |
        awk '{ v[n++] = $1 } END {
            if (n < 10) { print "- -"; exit }
            printf "%.1f %.1f\n", v[int(0.5 * n)], v[int(0.99 * n)] }'
}

if wanted latency; then
    lat_tasks=2000
    ((quick)) && lat_tasks=200
    declare -A lat=()
    for ((rep = 1; rep <= reps; rep++)); do
        for mode in credit push; do
            dir=$work/latency-$mode-$rep
            mkdir -p "$dir"
            if start_pipeline "$bin" "$dir" 1 -- --dispatch "$mode" --echo "$lat_tasks" \
                --window 1 && finish_pipeline 300; then
                read -r p50 p99 < <(round_trips "$dir/results.jsonl")
                echo "run latency what=$mode i=$rep p50_us=$p50 p99_us=$p99"
                lat[$mode-p50]+=" $p50" lat[$mode-p99]+=" $p99"
                ((keep)) || rm -rf "$dir"
            else
                echo "run latency what=$mode i=$rep error=failed dir=$dir"
                failed_runs=$((failed_runs + 1))
            fi
        done
        if timeout 300 "$bin/zfarm-bench-relay" --latency --relays 1 --count "$lat_tasks" \
            >"$work/latency.out" 2>&1; then
            p50=$(sed -n 's/^latency_p50: \([0-9.]*\) .*/\1/p' "$work/latency.out")
            p99=$(sed -n 's/^latency_p99: \([0-9.]*\) .*/\1/p' "$work/latency.out")
            echo "run latency what=raw i=$rep p50_us=$p50 p99_us=$p99"
            lat[raw-p50]+=" $p50" lat[raw-p99]+=" $p99"
        else
            echo "run latency what=raw i=$rep error=failed"
            failed_runs=$((failed_runs + 1))
        fi
    done
    line="latency tasks=$lat_tasks"
    json=''
    for k in credit-p50 credit-p99 push-p50 push-p99 raw-p50 raw-p99; do
        # shellcheck disable=SC2086 # a list of numbers
        v=$(median ${lat[$k]:-})
        line+=" ${k//-/_}_us=$v"
        json+="\"${k//-/_}_us\": $(json_num "$v"), "
        declare "lat_$(echo "$k" | tr - _)=$v"
    done
    # shellcheck disable=SC2154 # declared just above
    line+=" credit_vs_raw_p50=$(ratio "$lat_credit_p50" "$lat_raw_p50") n=$reps"
    echo "$line"
    echo "{\"benchmark\": \"latency\", \"rev\": \"$rev\", \"tasks\": $lat_tasks, ${json%, }}" \
        >"$results_dir/latency.json"
fi

# --- memory -----------------------------------------------------------------

# rss_kb PID: the resident set of PID's deepest descendant (the program
# under its timeout and time wrappers), in KiB, or nothing.
rss_kb() {
    local leaf
    leaf=$(tree "$1" | awk 'NR == 1')
    awk '/^VmRSS:/ { print $2 }' "/proc/$leaf/status" 2>/dev/null || true
}

if wanted memory; then
    dir=$work/memory
    mkdir -p "$dir"
    if start_pipeline "$bin" "$dir" 2 -- --dispatch push --echo "$mem_tasks"; then
        : >"$dir/rss"
        t=0
        while kill -0 "$vent_pid" 2>/dev/null; do
            {
                echo "$t sink $(rss_kb "$sink_pid")"
                echo "$t ventilator $(rss_kb "$vent_pid")"
                for w in "${worker_pids[@]}"; do echo "$t worker $(rss_kb "$w")"; done
            } >>"$dir/rss"
            sleep 1
            t=$((t + 1))
        done
        if finish_pipeline 60; then
            tps=$(awk 'END { print NR }' "$dir/results.jsonl")
            line="memory tasks=$mem_tasks seconds=$t"
            line+=$(awk -v end="$t" '
                NF == 3 { if (!($2 in seen)) { order[++k] = $2; seen[$2] = 1 }
                          v[$2, $1] = ($3 > v[$2, $1]) ? $3 : v[$2, $1]
                          if ($3 > peak[$2]) peak[$2] = $3; last[$2] = $3 }
                END { warm = int(end / 10)
                      for (i = 1; i <= k; i++) { p = order[i]
                          printf " %s_warm_kb=%s %s_peak_kb=%s %s_end_kb=%s", p, v[p, warm] + 0, \
                              p, peak[p], p, last[p] } }' "$dir/rss")
            echo "$line recorded=$tps"
            echo "$line" | awk '{ printf "{\"benchmark\": \"memory\""
                for (i = 2; i <= NF; i++) { split($i, kv, "="); printf ", \"%s\": %s", kv[1], kv[2] }
                print "}" }' >"$results_dir/memory.json"
            ((keep)) || rm -rf "$dir"
        else
            echo "memory error=failed dir=$dir"
            failed_runs=$((failed_runs + 1))
        fi
    else
        echo "memory error=start dir=$dir"
        failed_runs=$((failed_runs + 1))
    fi
fi

# --- exec -------------------------------------------------------------------

# exec_run TOOL I: one run of TOOL (xargs, parallel, zfarm) over the input;
# prints a "run exec" line and appends the seconds to exec_s[TOOL].
exec_run() {
    local tool=$1 rep=$2 t0 t1 s=- dir
    dir=$work/exec-$tool-$rep
    mkdir -p "$dir"
    case $tool in
    xargs)
        t0=$EPOCHREALTIME
        if timeout 600 xargs -P 2 -n 1 true <"$work/exec-input" 2>"$dir/err"; then
            s=$(elapsed "$t0" "$EPOCHREALTIME")
        fi
        ;;
    parallel)
        command -v parallel >/dev/null 2>&1 || {
            exec_s[$tool]+=" -"
            return 0
        }
        t0=$EPOCHREALTIME
        if timeout 600 parallel --will-cite -j 2 true <"$work/exec-input" 2>"$dir/err"; then
            s=$(elapsed "$t0" "$EPOCHREALTIME")
        fi
        ;;
    zfarm | zfarm-cold)
        worker_args=(--allow-exec) vent_input=$work/exec-input workers_first=1
        [[ $tool == zfarm-cold ]] && workers_first=0
        if start_pipeline "$bin" "$dir" 2 -- --dispatch credit --input - -- true &&
            finish_pipeline 600; then
            t0=$vent_started t1=$vent_ended
            s=$(elapsed "$t0" "$t1")
        fi
        worker_args=() vent_input=/dev/null workers_first=0
        ;;
    esac
    if [[ $s == - ]]; then
        echo "run exec tool=$tool i=$rep error=failed dir=$dir"
        failed_runs=$((failed_runs + 1))
        keep=1
    else
        echo "run exec tool=$tool i=$rep seconds=$s"
        ((keep)) || rm -rf "$dir"
    fi
    exec_s[$tool]+=" $s"
}

if wanted exec; then
    seq 1 "$exec_tasks" >"$work/exec-input"
    declare -A exec_s
    for ((rep = 1; rep <= reps; rep++)); do
        # Alternate the order, so no tool always runs after the same one.
        if ((rep % 2)); then
            order=(xargs parallel zfarm zfarm-cold)
        else
            order=(zfarm-cold zfarm parallel xargs)
        fi
        for tool in "${order[@]}"; do exec_run "$tool" "$rep"; done
    done
    # shellcheck disable=SC2086 # lists of numbers
    {
        xs=$(median ${exec_s[xargs]})
        ps=$(median ${exec_s[parallel]})
        zs=$(median ${exec_s[zfarm]})
        cs=$(median ${exec_s[zfarm-cold]})
    }
    zx=$(ratio "$zs" "$xs")
    pz=$(ratio "$ps" "$zs")
    cx=$(ratio "$cs" "$xs")
    echo "exec tasks=$exec_tasks xargs_s=$xs parallel_s=$ps zfarm_s=$zs zfarm_cold_s=$cs" \
        "zfarm_vs_xargs=$zx parallel_vs_zfarm=$pz zfarm_cold_vs_xargs=$cx n=$reps"
    cat >"$results_dir/exec.json" <<EOF
{"benchmark": "exec", "rev": "$rev", "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
 "machine": "$(printf '%s' "$machine" | sed 's/"/\\"/g')", "tasks": $exec_tasks, "repetitions": $reps,
 "median_seconds": {"xargs": $(json_num "$xs"), "parallel": $(json_num "$ps"), "zfarm": $(json_num "$zs"),
                    "zfarm_cold": $(json_num "$cs")},
 "zfarm_vs_xargs": $(json_num "$zx"), "parallel_vs_zfarm": $(json_num "$pz"),
 "zfarm_cold_vs_xargs": $(json_num "$cx"),
 "targets": {"zfarm_vs_xargs_at_most": 1.5, "parallel_vs_zfarm_at_least": 3}}
EOF
fi

((failed_runs == 0)) || exit 1
