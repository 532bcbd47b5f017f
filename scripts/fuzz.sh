#!/usr/bin/env bash
# Builds zfarm's libFuzzer targets with clang (AddressSanitizer and
# UndefinedBehaviorSanitizer on) and runs each for a bounded time from its
# seed corpus, after replaying every past crasher kept in fuzz/regressions/.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: scripts/fuzz.sh [--seconds N] [--only TARGET] [-j N] [-h|--help]

Targets (fuzz/):
  codec         every message decoder; what decodes must round-trip
  exec_format   the exec kind's payload and output maps
  sink_results  a stream of frames through the sink's job table and JSON
                rendering; every written line must parse back

Builds build-fuzz/ with clang++ (-fsanitize=fuzzer,address,undefined),
writes the seed corpora (valid messages, zfarm-fuzz-seeds), replays the
inputs in fuzz/regressions/TARGET/, then fuzzes each target for N seconds
(default 60). An input that crashes a target is saved in
fuzz/regressions/TARGET/ (commit it: it is replayed by every later run).

Options:
  --seconds N   fuzzing time per target (default 60; 0 only replays)
  --only NAME   one target
  -j N          build jobs (default: nproc)
  -h, --help    show this help

Exit status: 0 no crash, 1 a target crashed or the build failed, 2 bad usage.
EOF
}

die() {
    printf 'fuzz.sh: %s\n' "$*" >&2
    exit 2
}

seconds=60 only='' jobs=$(nproc 2>/dev/null || echo 2)
while (($#)); do
    case "$1" in
    --seconds)
        (($# >= 2)) || die "--seconds needs a number"
        seconds=$2
        shift
        ;;
    --only)
        (($# >= 2)) || die "--only needs a target"
        only=$2
        shift
        ;;
    -j)
        (($# >= 2)) || die "-j needs a number"
        jobs=$2
        shift
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    *) die "unknown argument: $1 (see --help)" ;;
    esac
    shift
done
[[ $seconds =~ ^[0-9]{1,6}$ ]] || die "--seconds takes a whole number, not '$seconds'"
[[ $jobs =~ ^[1-9][0-9]{0,3}$ ]] || die "-j takes a positive number, not '$jobs'"
targets=(codec exec_format sink_results)
if [[ -n $only ]]; then
    [[ " ${targets[*]} " == *" $only "* ]] || die "--only: no target '$only' (${targets[*]})"
    targets=("$only")
fi
command -v clang++ >/dev/null 2>&1 || die "clang++ is missing (scripts/setup.sh --deps-only --test-deps installs it)"

cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."
launcher=()
command -v ccache >/dev/null 2>&1 && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
build_targets=(zfarm-fuzz-seeds)
for t in "${targets[@]}"; do build_targets+=("zfarm-fuzz-$t"); done
echo "fuzz.sh: building build-fuzz/ with clang++" >&2
if ! CXX=clang++ timeout 3600 cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DZFARM_FUZZ=ON -DZFARM_SANITIZER=address,undefined -DZFARM_WERROR=ON \
    -DZFARM_BUILD_TESTS=OFF -DZFARM_BUILD_BENCHMARKS=OFF "${launcher[@]}" >/dev/null ||
    ! timeout 3600 cmake --build build-fuzz -j "$jobs" --target "${build_targets[@]}"; then
    echo "fuzz.sh: the build failed" >&2
    exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/zfarm-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
./build-fuzz/bin/zfarm-fuzz-seeds "$work/corpus"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
crashed=()
for t in "${targets[@]}"; do
    bin=./build-fuzz/bin/zfarm-fuzz-$t
    regressions=fuzz/regressions/$t
    mkdir -p "$regressions"
    mapfile -t past < <(find "$regressions" -type f ! -name '.*' | sort)
    if ((${#past[@]})); then
        echo "fuzz.sh: $t: replaying ${#past[@]} past crasher(s)" >&2
        if ! timeout 600 "$bin" -rss_limit_mb=2048 "${past[@]}" >"$work/$t.replay" 2>&1; then
            tail -n 30 "$work/$t.replay" >&2
            crashed+=("$t (a past crasher)")
            continue
        fi
    fi
    ((seconds > 0)) || continue
    echo "fuzz.sh: $t: fuzzing for $seconds s" >&2
    if ! timeout $((seconds + 300)) "$bin" -max_total_time="$seconds" -rss_limit_mb=2048 \
        -max_len=65536 -timeout=10 -artifact_prefix="$regressions/" "$work/corpus/$t" \
        >"$work/$t.log" 2>&1; then
        tail -n 40 "$work/$t.log" >&2
        crashed+=("$t")
        continue
    fi
    tail -n 1 "$work/$t.log" >&2
done
if ((${#crashed[@]})); then
    echo "fuzz.sh: crashed: ${crashed[*]}; the inputs are in fuzz/regressions/" >&2
    exit 1
fi
echo "fuzz.sh: no crash (${targets[*]})" >&2
