#!/usr/bin/env bash
# Benchmarks for issue 3 (fault tolerance): how long after a worker is killed
# its tasks are sent again, and what the fault tolerance costs in no-fault
# throughput against the pipeline before it (a baseline commit, built in a
# worktree of its own and measured interleaved with this tree in one run).
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: scripts/bench-faults.sh [OPTIONS]

Builds this tree and a baseline commit in Release (the three programs only),
then measures, on free localhost ports:

  recovery    sink + 4 workers + ventilator running --sleep TASKS --ms 50;
              once a fifth of the tasks are recorded, worker-2 is killed with
              SIGKILL. Seconds from the kill to: the sink declaring it lost
              (lost), the ventilator's "worker worker-2 gone" line (gone, the
              headline figure: in credit dispatch it re-sends what the worker
              held), in push dispatch the last "sweep" re-sending what no live
              worker reports holding (sweep), the first and the last of those
              lines that re-sent a task (first_resent, all_resent), and the
              end of the last re-sent attempt the sink recorded, from its
              results' start + ms (recorded). For each dispatch mode and each
              sink --liveness-timeout; configurations interleaved.
  throughput  sink + 2 workers + ventilator running --echo N (32-byte
              payloads), results to a file; baseline and current runs
              alternate (base, current, current, base, ...). Tasks/s is
              N / (end of the last task - start of the first), from the
              results' start and ms fields; the sink's own figure (job open
              to done, so it includes start-up) is printed too, and the CPU
              time (user + sys, GNU time) per task of all the processes and
              of each kind, which other load on the machine disturbs less.

Options:
  --base REV        baseline commit (default 4dc7486: the core pipeline,
                    before leases, heartbeats and re-dispatch)
  -n N              repetitions of each measurement (default 5)
  --modes LIST      dispatch modes, comma-separated (default push,credit)
  --liveness LIST   sink --liveness-timeout values for recovery (default 2.5,1)
  --sleep-tasks N   tasks of the recovery job (default 800, 50 ms each)
  --echo N          tasks of the throughput job (default 1000000)
  --only WHAT       recovery or throughput (default both)
  --keep            keep the temporary directory (logs, results)
  -j N              build jobs (default: nproc)
  -h, --help        show this help

Output: one line per run ("run recovery ...", "run throughput ..."), then the
summaries, fixed key=value lines, times in seconds, medians over the runs:

  recovery mode=credit liveness=3 median_s=3.79 max_s=3.95 lost_median_s=3.79
      sweep_median_s=- sweep_max_s=- first_resent_median_s=3.79 ...
      all_resent_median_s=... recorded_median_s=3.85 recorded_max_s=4.01
      target_s=4 n=5
  throughput mode=push tasks=1000000 base_tps=80000 current_tps=78000
      ratio=0.975 pair_ratio_median=0.971 base_sink_tps=... current_sink_tps=...
      sink_ratio=... n=5
  cpu mode=push tasks=1000000 cpu_base_us=11.7 cpu_current_us=12.1
      cpu_ratio=1.034 cpu_sink_base_us=... (and cpu_vent_, cpu_workers_) n=5

(each on one line). ratio is the ratio of the medians; pair_ratio_median the
median of each repetition's current/base.
target_s is the issue's target, liveness timeout + 1 s. A figure that could
not be measured in a run is "-" there and left out of the summary.

Builds go to build-bench/ (this tree) and to a worktree of REV in a temporary
directory, removed at exit. Environment: TMPDIR; ccache is used when present.
Exit status: 0 done, 1 a run failed, 2 bad usage.
EOF
}

die() {
    printf 'bench-faults.sh: %s\n' "$*" >&2
    exit 2
}

base_rev=4dc7486 reps=5 modes=push,credit livenesses=2.5,1 sleep_tasks=800
echo_tasks=1000000 only='' keep=0 jobs=$(nproc 2>/dev/null || echo 2)
need_arg() { (($1 >= 2)) || die "$2 needs a value"; }
while (($#)); do
    case "$1" in
    --base) need_arg $# "$1" && base_rev=$2 && shift ;;
    -n) need_arg $# "$1" && reps=$2 && shift ;;
    --modes) need_arg $# "$1" && modes=$2 && shift ;;
    --liveness) need_arg $# "$1" && livenesses=$2 && shift ;;
    --sleep-tasks) need_arg $# "$1" && sleep_tasks=$2 && shift ;;
    --echo) need_arg $# "$1" && echo_tasks=$2 && shift ;;
    --only) need_arg $# "$1" && only=$2 && shift ;;
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
if ! is_count "$sleep_tasks" || ((sleep_tasks < 20)); then
    die "--sleep-tasks takes a number from 20 up, not '$sleep_tasks'"
fi
is_count "$echo_tasks" || die "--echo takes a positive number, not '$echo_tasks'"
is_count "$jobs" || die "-j takes a positive number, not '$jobs'"
[[ -z $only || $only == recovery || $only == throughput ]] || die "--only takes recovery or throughput"
IFS=, read -ra mode_list <<<"$modes"
for m in "${mode_list[@]}"; do
    [[ $m == push || $m == credit ]] || die "--modes: '$m' is not push or credit"
done
IFS=, read -ra liveness_list <<<"$livenesses"
for l in "${liveness_list[@]}"; do
    [[ $l =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--liveness: '$l' is not a number of seconds"
done
((${#mode_list[@]})) || die "--modes is empty"

cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."
repo=$PWD
git -C "$repo" rev-parse --verify -q "$base_rev^{commit}" >/dev/null ||
    die "--base: '$base_rev' is not a commit in $repo"

work=$(mktemp -d "${TMPDIR:-/tmp}/zfarm-bench.XXXXXX")
base_tree=$work/base

# shellcheck source=scripts/lib/pipeline.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib/pipeline.sh"
limit=600 # seconds any one process may live

cleanup() {
    local status=$?
    ((${#pids[@]})) && stop_pids "${pids[@]}"
    if [[ -d $base_tree ]]; then
        git -C "$repo" worktree remove --force "$base_tree" >/dev/null 2>&1 || true
        git -C "$repo" worktree prune >/dev/null 2>&1 || true
    fi
    if ((keep)); then
        echo "bench-faults.sh: logs and results kept in $work" >&2
    else
        rm -rf "$work"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# --- builds -----------------------------------------------------------------

launcher=()
command -v ccache >/dev/null 2>&1 && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
build() { # build SRC_DIR BUILD_DIR LOG
    # CCACHE_BASEDIR makes the absolute paths relative, so that the baseline's
    # fresh worktree hits the cache of the previous run.
    if ! CCACHE_BASEDIR=$1 CCACHE_NOHASHDIR=1 timeout 1800 cmake -S "$1" -B "$2" \
        -DCMAKE_BUILD_TYPE=Release -DZFARM_BUILD_TESTS=OFF "${launcher[@]}" >"$3" 2>&1 ||
        ! CCACHE_BASEDIR=$1 CCACHE_NOHASHDIR=1 timeout 1800 cmake --build "$2" -j "$jobs" \
            --target zfarm-sink zfarm-worker zfarm-ventilator >>"$3" 2>&1; then
        tail -n 30 "$3" >&2
        die "the build in $2 failed; log above"
    fi
}
current_rev=$(git -C "$repo" rev-parse --short HEAD)
git -C "$repo" diff --quiet HEAD 2>/dev/null || current_rev+="+dirty"
echo "bench-faults.sh: building $current_rev in $repo/build-bench (Release)" >&2
build "$repo" "$repo/build-bench" "$work/build-current.log"
current_bin=$repo/build-bench/bin
base_bin=
if [[ $only != recovery ]]; then
    base_rev=$(git -C "$repo" rev-parse --short "$base_rev^{commit}")
    echo "bench-faults.sh: building baseline $base_rev in $base_tree (Release)" >&2
    timeout 120 git -C "$repo" worktree add --detach "$base_tree" "$base_rev" >/dev/null 2>&1 ||
        die "cannot add a worktree for $base_rev in $base_tree"
    build "$base_tree" "$base_tree/build-bench" "$work/build-base.log"
    base_bin=$base_tree/build-bench/bin
fi

printf 'bench-faults current=%s base=%s nproc=%s cpu="%s" kernel=%s date=%s\n' \
    "$current_rev" "$base_rev" "$(nproc)" \
    "$(sed -n '/^model name/{s/^model name[[:space:]]*: //p;q}' /proc/cpuinfo)" \
    "$(uname -r)" "$(date -u +%Y-%m-%dT%H:%M:%SZ)"

# --- processes and ports ----------------------------------------------------

# --- arithmetic -------------------------------------------------------------

# stats VALUE...: prints "MEDIAN MAX" of the numeric values ("-" ignored),
# or "- -" if there are none.
stats() {
    printf '%s\n' "$@" | sort -g |
        awk '/^[0-9.]+$/ { v[++n] = $1 } END {
            if (n == 0) { print "- -"; exit }
            m = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
            printf "%.3f %.3f\n", m, v[n]
        }'
}
# seconds of the day of a log line's leading HH:MM:SS.mmm
log_tod() { awk '{ split($1, t, ":"); printf "%.3f\n", t[1] * 3600 + t[2] * 60 + t[3] }'; }
# events KILL_TOD TEXT < LOG: "SECONDS COUNT" for each line containing TEXT
# logged at or after the kill: SECONDS since it (across midnight), COUNT the
# number in the line's first "N task(s)", or "-".
events() {
    grep -F -- "$2" | awk -v k="$1" '{
        split($1, t, ":"); d = t[1] * 3600 + t[2] * 60 + t[3] - k
        if (d < -43200) d += 86400
        if (d < -0.001) next
        c = match($0, /[0-9]+ task\(s\)/) ? substr($0, RSTART, RLENGTH - 8) : "-"
        printf "%.3f %s\n", d, c
    }' || true
}
# first: the first line of its input, or "- -" if none
first() { awk 'NR == 1 { print; found = 1; exit } END { if (!found) print "- -" }'; }

failed_runs=0

# --- recovery ---------------------------------------------------------------

# recovery_run MODE LIVENESS I: prints one "run recovery" line and appends its
# figures to sum_*[MODE/LIVENESS].
recovery_run() {
    local mode=$1 live=$2 rep=$3 dir victim kill_epoch kill_tod
    local lost_s gone_s gone_n sweeps sweep_first sweep_last sweep_n first_s all_s rec rec_n
    local key=$1/$2
    dir=$work/recovery-$mode-$live-$rep
    mkdir -p "$dir"
    start_pipeline "$current_bin" "$dir" 4 --liveness-timeout "$live" -- \
        --dispatch "$mode" --sleep "$sleep_tasks" --ms 50 || {
        echo "run recovery mode=$mode liveness=$live i=$rep error=start"
        failed_runs=$((failed_runs + 1))
        return 0
    }
    # Mid-job: once a fifth of the tasks are recorded, kill worker-2 itself
    # (the deepest process under its wrappers) with SIGKILL.
    local deadline=$((SECONDS + 60))
    while (($(wc -l <"$dir/results.jsonl" 2>/dev/null || echo 0) < sleep_tasks / 5)); do
        if ((SECONDS >= deadline)) || ! kill -0 "$vent_pid" 2>/dev/null; then break; fi
        sleep 0.02
    done
    victim=$(tree "${worker_pids[1]}" | awk 'NR == 1') # not head: no SIGPIPE
    if [[ $(ps -o comm= -p "$victim" 2>/dev/null || true) != zfarm-worker ]]; then
        finish_pipeline 60 || true
        echo "run recovery mode=$mode liveness=$live i=$rep error=no-victim"
        failed_runs=$((failed_runs + 1))
        return 0
    fi
    kill -KILL "$victim"
    kill_epoch=$EPOCHREALTIME
    { wait "${worker_pids[1]}" || true; } 2>/dev/null # no "Killed" notice
    kill_tod=$(date -d "@$kill_epoch" +%H:%M:%S.%N | log_tod)
    if ! finish_pipeline 120; then
        echo "run recovery mode=$mode liveness=$live i=$rep error=job-failed dir=$dir"
        failed_runs=$((failed_runs + 1))
        return 0
    fi
    # Re-sends the ventilator logged after the kill: "gone" when the sink's
    # LOST arrives (in push dispatch it names no task), and in push dispatch
    # "sweep"s of what no live worker reports holding, k_sweep_delay after
    # the disconnect or the LOST. first_s and all_s: the first and the last
    # of these lines that re-sent a task.
    read -r lost_s _ < <(events "$kill_tod" 'worker worker-2 lost' <"$dir/sink.log" | first)
    events "$kill_tod" 'worker worker-2 gone:' <"$dir/ventilator.log" | first >"$dir/gone"
    read -r gone_s gone_n <"$dir/gone"
    events "$kill_tod" 'not held by any live worker sent again' <"$dir/ventilator.log" \
        >"$dir/sweeps"
    read -r sweeps sweep_first sweep_last sweep_n < <(awk '{ n++; if (n == 1) f = $1; l = $1; t += $2 }
        END { if (n) print n, f, l, t; else print 0, "-", "-", 0 }' "$dir/sweeps")
    read -r first_s all_s < <(cat "$dir/gone" "$dir/sweeps" | awk '$2 ~ /^[0-9]+$/ && $2 > 0' |
        sort -g | awk 'NR == 1 { f = $1 } { l = $1 } END { if (NR) print f, l; else print "- -" }')
    # The re-sent attempts the sink recorded: when the last one ended.
    read -r rec_n rec < <(awk -v k="$kill_epoch" '
        match($0, /"attempts":[0-9]+/) && substr($0, RSTART + 11, RLENGTH - 11) + 0 >= 2 {
            ms = 0; st = 0
            if (match($0, /"ms":[-+.0-9eE]+/)) ms = substr($0, RSTART + 5, RLENGTH - 5) + 0
            if (match($0, /"start":[-+.0-9eE]+/)) st = substr($0, RSTART + 8, RLENGTH - 8) + 0
            n++; e = st + ms / 1000; if (e > last) last = e
        }
        END { if (n) printf "%d %.3f\n", n, last - k; else print "0 -" }' "$dir/results.jsonl")
    echo "run recovery mode=$mode liveness=$live i=$rep lost_s=$lost_s gone_s=$gone_s" \
        "gone_tasks=$gone_n sweeps=$sweeps sweep_first_s=$sweep_first sweep_last_s=$sweep_last" \
        "sweep_tasks=$sweep_n first_resent_s=$first_s all_resent_s=$all_s recorded_s=$rec" \
        "resent_recorded=$rec_n"
    sum_lost[$key]+=" $lost_s" sum_gone[$key]+=" $gone_s" sum_sweep[$key]+=" $sweep_last"
    sum_first[$key]+=" $first_s" sum_all[$key]+=" $all_s" sum_rec[$key]+=" $rec"
    ((keep)) || rm -rf "$dir"
}

if [[ $only != throughput ]]; then
    declare -A sum_lost sum_gone sum_sweep sum_first sum_all sum_rec
    for ((rep = 1; rep <= reps; rep++)); do
        for live in "${liveness_list[@]}"; do
            for mode in "${mode_list[@]}"; do
                recovery_run "$mode" "$live" "$rep"
            done
        done
    done
    for live in "${liveness_list[@]}"; do
        for mode in "${mode_list[@]}"; do
            key=$mode/$live
            # shellcheck disable=SC2086 # the sums are lists of numbers
            {
                read -r gm gx < <(stats ${sum_gone[$key]:-})
                read -r lm _ < <(stats ${sum_lost[$key]:-})
                read -r sm sx < <(stats ${sum_sweep[$key]:-})
                read -r fm fx < <(stats ${sum_first[$key]:-})
                read -r am ax < <(stats ${sum_all[$key]:-})
                read -r rm_ rx < <(stats ${sum_rec[$key]:-})
                n=$(printf '%s\n' ${sum_gone[$key]:-} | grep -Ec '^[0-9.]+$' || true)
            }
            echo "recovery mode=$mode liveness=$live median_s=$gm max_s=$gx lost_median_s=$lm" \
                "sweep_median_s=$sm sweep_max_s=$sx first_resent_median_s=$fm first_resent_max_s=$fx" \
                "all_resent_median_s=$am all_resent_max_s=$ax" \
                "recorded_median_s=$rm_ recorded_max_s=$rx" \
                "target_s=$(awk -v l="$live" 'BEGIN { print l + 1 }') n=$n"
        done
    done
fi

# --- throughput -------------------------------------------------------------

# cpu_us FILE...: the CPU microseconds (user + sys) the GNU time files record,
# summed, per task of the job; "-" if a file is missing.
cpu_us() {
    local f
    for f in "$@"; do [[ -s $f ]] || {
        echo -
        return
    }; done
    tail -q -n 1 "$@" | awk -v n="$echo_tasks" '{ s += $1 + $2 } END { printf "%.2f\n", s * 1e6 / n }'
}

# throughput_run WHICH MODE I: one echo job on the WHICH (base or current)
# build; prints a "run throughput" line and appends its figures to
# tp[WHICH/MODE/KEY] for KEY tps, sink_tps, cpu (all processes, us/task),
# cpu_sink, cpu_ventilator, cpu_workers.
throughput_run() {
    local which=$1 mode=$2 rep=$3 dir bin n tps=- sink_tps=- ok=1 k
    local cpu=- cpu_sink=- cpu_vent=- cpu_workers=-
    dir=$work/throughput-$which-$mode-$rep
    mkdir -p "$dir"
    bin=$current_bin
    [[ $which == base ]] && bin=$base_bin
    cpu_dir=$dir
    if ! start_pipeline "$bin" "$dir" 2 -- --dispatch "$mode" --echo "$echo_tasks" ||
        ! finish_pipeline 300; then
        ok=0
    fi
    cpu_dir=''
    if ((!ok)); then
        echo "run throughput mode=$mode build=$which i=$rep error=job-failed dir=$dir"
        failed_runs=$((failed_runs + 1))
        return 0
    fi
    read -r n tps < <(awk '
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
    sink_tps=$(sed -n 's/.* done: .* (\([0-9]*\) tasks\/s).*/\1/p' "$dir/sink.log" | tail -n 1)
    sink_tps=${sink_tps:--}
    if ((have_time)); then
        cpu=$(cpu_us "$dir"/*.cpu)
        cpu_sink=$(cpu_us "$dir/sink.cpu")
        cpu_vent=$(cpu_us "$dir/ventilator.cpu")
        cpu_workers=$(cpu_us "$dir"/worker-*.cpu)
    fi
    echo "run throughput mode=$mode build=$which i=$rep tasks=$n tps=$tps sink_tps=$sink_tps" \
        "cpu_us_per_task=$cpu sink_us=$cpu_sink ventilator_us=$cpu_vent workers_us=$cpu_workers"
    for k in tps sink_tps cpu cpu_sink cpu_vent cpu_workers; do
        tp[$which/$mode/$k]+=" ${!k}"
    done
    last_tps=$tps
    ((keep)) || rm -rf "$dir"
}

# ratio CURRENT BASE: CURRENT / BASE to 3 decimals, or "-"
ratio() {
    if [[ $1 == - || $2 == - ]]; then
        echo -
    else
        awk -v b="$2" -v c="$1" 'BEGIN { printf "%.3f\n", c / b }'
    fi
}
# round: its input number to a whole one ("-" stays)
round() { awk '{ if ($1 == "-") print; else printf "%.0f\n", $1 }'; }
# med WHICH/MODE/KEY: the median of tp[WHICH/MODE/KEY], or "-"
med() {
    local m _
    # shellcheck disable=SC2086 # a list of numbers
    read -r m _ < <(stats ${tp[$1]:-})
    echo "$m"
}

if [[ $only != recovery ]]; then
    declare -A tp pair
    for ((rep = 1; rep <= reps; rep++)); do
        for mode in "${mode_list[@]}"; do
            # ABBA: base first on odd repetitions, current first on even ones.
            order=(base current)
            ((rep % 2)) || order=(current base)
            declare -A got=()
            for which in "${order[@]}"; do
                throughput_run "$which" "$mode" "$rep"
                got[$which]=$last_tps
            done
            if [[ ${got[base]} != - && ${got[current]} != - ]]; then
                pair[$mode]+=" $(ratio "${got[current]}" "${got[base]}")"
            fi
        done
    done
    for mode in "${mode_list[@]}"; do
        # shellcheck disable=SC2086 # a list of numbers
        {
            read -r pm _ < <(stats ${pair[$mode]:-})
            n=$(printf '%s\n' ${pair[$mode]:-} | grep -Ec '^[0-9.]+$' || true)
        }
        b=$(med "base/$mode/tps" | round) c=$(med "current/$mode/tps" | round)
        bs=$(med "base/$mode/sink_tps" | round) cs=$(med "current/$mode/sink_tps" | round)
        echo "throughput mode=$mode tasks=$echo_tasks base_tps=$b current_tps=$c" \
            "ratio=$(ratio "$c" "$b") pair_ratio_median=$pm base_sink_tps=$bs" \
            "current_sink_tps=$cs sink_ratio=$(ratio "$cs" "$bs") n=$n"
        line="cpu mode=$mode tasks=$echo_tasks"
        for k in cpu cpu_sink cpu_vent cpu_workers; do
            b=$(med "base/$mode/$k") c=$(med "current/$mode/$k")
            line+=" ${k}_base_us=$b ${k}_current_us=$c ${k}_ratio=$(ratio "$c" "$b")"
        done
        echo "$line n=$n"
    done
fi

((failed_runs == 0)) || {
    echo "bench-faults.sh: $failed_runs run(s) failed" >&2
    exit 1
}
