#!/usr/bin/env bash
# Checks the installed zfarm package the way an outside project uses it:
# installs a build into a temporary prefix, builds examples/embed_worker
# against that prefix only (find_package(zfarm CONFIG)), and runs the
# resulting application as a worker in a real pipeline, in both dispatch
# modes, checking every recorded output.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: scripts/check-install.sh [--build-dir DIR] [--keep] [-h|--help]

1. cmake --install DIR --prefix TMP/prefix, and checks the package holds the
   public headers (with the generated zfarm/version.hpp) and its CMake config.
2. Configures and builds examples/embed_worker with -DCMAKE_PREFIX_PATH=TMP/prefix
   and nothing from the source tree, then runs its SHA-256 self-test.
3. For push and for credit dispatch: starts DIR's zfarm-sink (--once) and
   zfarm-ventilator on free localhost ports, and the example as the only
   worker (--exit-when-done); the ventilator runs a --tasks-file job of
   sha256, primes and echo tasks, one of them with a bad payload; checks
   every task is recorded once with the right output, the bad one failed
   with the handler's reason, and that every program exits as it should.

Options:
  --build-dir DIR  the zfarm build to install (default: build), already built
  --keep           keep the temporary directory (printed) instead of removing it
  -h, --help       show this help

Exit status: 0 the check passed, 1 it failed, 2 bad usage.
EOF
}

die() {
    printf 'check-install.sh: %s\n' "$*" >&2
    exit 2
}
fail() {
    printf 'check-install.sh: FAILED: %s\n' "$*" >&2
    exit 1
}

build_dir=build keep=0
while (($#)); do
    case "$1" in
    --build-dir)
        (($# >= 2)) || die "--build-dir needs a directory"
        build_dir=$2
        shift
        ;;
    --build-dir=*) build_dir=${1#--build-dir=} ;;
    --keep) keep=1 ;;
    -h | --help)
        usage
        exit 0
        ;;
    *) die "unknown argument: $1 (see --help)" ;;
    esac
    shift
done

cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."
[[ -f $build_dir/CMakeCache.txt ]] || die "$build_dir is not a CMake build directory"
bin=$(readlink -f "$build_dir/bin")
for prog in zfarm-sink zfarm-ventilator; do
    [[ -x $bin/$prog ]] || die "$bin/$prog is missing: build $build_dir first"
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/zfarm-check-install.XXXXXX")
# Every process this script starts, so the trap stops exactly those.
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    if ((keep)); then
        echo "check-install.sh: kept $tmp"
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# shellcheck source=scripts/lib/ports.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib/ports.sh"

show_logs() {
    local f
    for f in "$@"; do
        [[ -s $f ]] || continue
        printf -- '--- %s (last lines)\n' "${f#"$tmp"/}" >&2
        tail -n 20 "$f" >&2
    done
}

# --- 1. install -------------------------------------------------------------
prefix=$tmp/prefix
echo "check-install.sh: installing $build_dir into $prefix"
cmake --install "$build_dir" --prefix "$prefix" >"$tmp/install.log" ||
    { show_logs "$tmp/install.log"; fail "cmake --install"; }
for f in include/zfarm/worker.hpp include/zfarm/version.hpp include/zfarm/expected.hpp \
    include/zfarm/sockets.hpp include/zfarm/protocol.hpp; do
    [[ -f $prefix/$f ]] || fail "the package has no $f"
done
config=$(find "$prefix" -name zfarmConfig.cmake -print -quit)
[[ -n $config ]] || fail "the package has no zfarmConfig.cmake"
[[ -f $(dirname "$config")/zfarmConfigVersion.cmake ]] || fail "the package has no version file"
grep -q '@' "$prefix/include/zfarm/version.hpp" && fail "version.hpp was installed unconfigured"

# --- 2. build the example against the prefix only ---------------------------
app_build=$tmp/embed_worker-build
echo "check-install.sh: building examples/embed_worker against the package"
launcher=()
command -v ccache >/dev/null 2>&1 && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
{
    # -Werror: the example is held to zfarm's warning-free rule (the package's
    # headers come in as system headers, so only the example's own code counts).
    cmake -S examples/embed_worker -B "$app_build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON \
        -DCMAKE_CXX_FLAGS=-Werror "${launcher[@]}" &&
        cmake --build "$app_build" -j2
} >"$tmp/app-build.log" 2>&1 || { show_logs "$tmp/app-build.log"; fail "building embed_worker"; }
# The package found must be the one just installed, not another on the system.
grep -qF "zfarm_DIR:PATH=$(dirname "$config")" "$app_build/CMakeCache.txt" ||
    fail "embed_worker found another zfarm package: $(grep zfarm_DIR "$app_build/CMakeCache.txt")"
app=$app_build/embed_worker
"$app" --self-test || fail "embed_worker --self-test"

# --- 3. run it as the worker of a real pipeline -----------------------------
# id kind payload -> expected status and output (or error).
tasks=$tmp/tasks.jsonl
cat >"$tasks" <<'EOF'
{"kind":"sha256","payload":"abc"}
{"kind":"sha256","payload":""}
{"kind":"sha256","payload":"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"}
{"kind":"primes","payload":"100"}
{"kind":"primes","payload":"1000000"}
{"kind":"primes","payload":"ten"}
{"kind":"echo","payload":"hello, zfarm"}
EOF
expected=(
    'ok ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'
    'ok e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'
    'ok 248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1'
    'ok 25'
    'ok 78498'
    "failed payload must be a whole number from 0 to 100000000, got 'ten'"
    'ok hello, zfarm'
)

# wait_exit PID SECONDS: waits for PID to exit, sets $exit_status; false if it
# was still running after SECONDS. A reaped PID leaves pids, so that cleanup
# never signals a process that reused its number.
exit_status=
wait_exit() {
    local i p rest=()
    for ((i = 0; i < $2 * 10; i++)); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$1" 2>/dev/null && return 1
    exit_status=0
    wait "$1" || exit_status=$?
    for p in "${pids[@]}"; do [[ $p == "$1" ]] || rest+=("$p"); done
    pids=("${rest[@]}")
}
# stop PID: a process that lost a race for its port.
stop() {
    kill -KILL "$1" 2>/dev/null || true
    wait_exit "$1" 5 || true
}

# run_job MODE: one job in dispatch MODE (push or credit); fails the script
# when anything is off.
run_job() {
    local mode=$1 dir=$tmp/$1 attempt pr pc pt pk sink_pid vent_pid worker_pid i line want
    mkdir -p "$dir"
    local results=$dir/results.jsonl
    for attempt in 1 2 3; do
        pr=$(pick_port) || return 1
        pc=$(pick_port) || return 1
        chosen+=("$pr" "$pc")
        "$bin/zfarm-sink" --once -o "$results" --results "$(ep "$pr")" --control "$(ep "$pc")" \
            2>"$dir/sink.log" &
        sink_pid=$!
        pids+=("$sink_pid")
        wait_listening all "$sink_pid" "$pr" "$pc" && break
        stop "$sink_pid"
        ((attempt < 3)) && grep -qi 'address already in use' "$dir/sink.log" && continue
        show_logs "$dir/sink.log"
        fail "$mode: the sink did not start"
    done
    for attempt in 1 2 3; do
        pt=$(pick_port) || return 1
        pk=$(pick_port) || return 1
        chosen+=("$pt" "$pk")
        "$bin/zfarm-ventilator" --dispatch "$mode" --tasks "$(ep "$pt")" --credit "$(ep "$pk")" \
            --results "$(ep "$pr")" --control "$(ep "$pc")" --tasks-file "$tasks" \
            --job "check-install-$mode" --retries 0 >"$dir/ventilator.out" 2>"$dir/ventilator.log" &
        vent_pid=$!
        pids+=("$vent_pid")
        wait_listening any "$vent_pid" "$pt" "$pk" && break
        stop "$vent_pid"
        ((attempt < 3)) && grep -qi 'address already in use' "$dir/ventilator.log" && continue
        show_logs "$dir/ventilator.log"
        fail "$mode: the ventilator did not start"
    done
    "$app" --exit-when-done --threads 2 --id "embed-$mode" --tasks "$(ep "$pt")" \
        --credit "$(ep "$pk")" --results "$(ep "$pr")" --control "$(ep "$pc")" \
        2>"$dir/embed_worker.log" &
    worker_pid=$!
    pids+=("$worker_pid")

    local logs=("$dir/ventilator.out" "$dir/ventilator.log" "$dir/sink.log" "$dir/embed_worker.log")
    wait_exit "$vent_pid" 30 || { show_logs "${logs[@]}"; fail "$mode: the job did not end in 30 s"; }
    # One task fails by design, so the job's status is 1 (README: exit status).
    ((exit_status == 1)) || { show_logs "${logs[@]}"; fail "$mode: ventilator exit $exit_status, not 1"; }
    want="job check-install-$mode: ${#expected[@]} tasks, $((${#expected[@]} - 1)) ok, 1 failed, 1 workers, "
    line=$(cat "$dir/ventilator.out")
    [[ $line == "$want"* ]] || fail "$mode: the ventilator printed '$line', expected '$want...'"
    wait_exit "$sink_pid" 10 || fail "$mode: the sink (--once) did not exit"
    wait_exit "$worker_pid" 10 || { show_logs "${logs[@]}"; fail "$mode: embed_worker did not exit"; }
    ((exit_status == 0)) || { show_logs "${logs[@]}"; fail "$mode: embed_worker exit $exit_status"; }

    # The sink writes keys in sorted order, one object per line; a quote in a
    # string value is always escaped, so these patterns match only real keys.
    (($(wc -l <"$results") == ${#expected[@]})) ||
        { cat "$results" >&2; fail "$mode: $(wc -l <"$results") results, not ${#expected[@]}"; }
    local status value pattern
    for i in "${!expected[@]}"; do
        status=${expected[i]%% *} value=${expected[i]#* }
        line=$(grep -F "\"id\":$i," "$results") || fail "$mode: no result for id $i"
        [[ $(grep -cF "\"id\":$i," "$results") == 1 ]] || fail "$mode: id $i recorded twice"
        if [[ $status == ok ]]; then
            pattern="\"output\":\"$value\""
        else
            pattern="\"error\":\"$value\""
        fi
        [[ $line == *"\"status\":\"$status\""* && $line == *"$pattern"* &&
            $line == *'"worker":"embed-'"$mode"'"'* ]] ||
            fail "$mode: id $i: expected $status with $pattern from embed-$mode, got $line"
    done
    echo "check-install.sh: $mode dispatch: ${#expected[@]} tasks recorded once, outputs right"
}

run_job push
run_job credit
echo "check-install.sh: PASSED"
