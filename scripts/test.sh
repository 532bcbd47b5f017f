#!/usr/bin/env bash
# Runs every check zfarm has: formatting, shellcheck, a -Werror build with the
# whole test suite, then the suite again under AddressSanitizer and
# UndefinedBehaviorSanitizer. Exits non-zero if any stage fails; the last
# line it prints says which stages passed.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: scripts/test.sh [--quick | --sanitize-only] [-h|--help] [-- CTEST_ARGS...]

Installs missing packages (scripts/setup.sh --deps-only --test-deps), then runs:
  format      clang-format --dry-run --Werror on every tracked or untracked,
              non-ignored *.cpp / *.hpp
  shellcheck  shellcheck -x on scripts/*.sh, scripts/lib/*.sh,
              scripts/slurm/zfarm.sbatch, tests/support/*.sh, bench/*.sh and
              .ci/run
  build       build/ with -DZFARM_WERROR=ON
  ctest       ctest --test-dir build (fails when no test is found)
  install     scripts/check-install.sh: installs build/ into a temporary prefix,
              builds examples/embed_worker against it alone, runs it in a pipeline
  asan-build  build-asan/ (Debug) with -DZFARM_SANITIZER=address,undefined -DZFARM_WERROR=ON
  asan-ctest  ctest --test-dir build-asan, any sanitizer report fails the test;
              leaves out the tests of the launch scripts (LaunchScripts, Slurm,
              BenchSmoke): they run the same programs as the rest, through
              bash, tmux, sshd and slurmd, and take minutes
  fuzz        scripts/fuzz.sh --seconds ZFARM_FUZZ_SECONDS (default 60): the
              libFuzzer targets, built with clang, after replaying past crashers

Options:
  --quick          skip the sanitizer and fuzz stages
  --sanitize-only  run only the sanitizer and fuzz stages
  -h, --help       show this help
  -- ARGS...       pass ARGS to both ctest runs (e.g. -- -R Codec, -- -L unit)

Exit status: 0 every stage passed, 1 a stage failed, 2 bad usage.
EOF
}

die() {
    printf 'test.sh: %s\n' "$*" >&2
    exit 2
}

run_main=1 run_asan=1
ctest_args=()
while (($#)); do
    case "$1" in
    --quick) run_asan=0 ;;
    --sanitize-only) run_main=0 ;;
    -h | --help)
        usage
        exit 0
        ;;
    --)
        shift
        ctest_args=("$@")
        break
        ;;
    *) die "unknown argument: $1 (see --help)" ;;
    esac
    shift
done
((run_main || run_asan)) || die "--quick and --sanitize-only exclude each other"

cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."
readonly setup=scripts/setup.sh

passed=() failed=() skipped=()
stage() { printf '\n==> %s\n' "$*"; }
record() { # record NAME STATUS [NOTE]
    local label=$1${3:+ ($3)}
    if (($2 == 0)); then passed+=("$label"); else failed+=("$label"); fi
}

sources_to_format() {
    if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git ls-files -z --cached --others --exclude-standard -- '*.cpp' '*.hpp'
    else
        find common worker sink ventilator tests examples \( -name '*.cpp' -o -name '*.hpp' \) \
            -print0 2>/dev/null || true
    fi
}

check_format() {
    local files=() f
    while IFS= read -r -d '' f; do
        [[ -f $f ]] && files+=("$f") # skip tracked files deleted in the work tree
    done < <(sources_to_format | sort -zu)
    ((${#files[@]})) || {
        echo "no C++ sources found" >&2
        return 1
    }
    echo "${#files[@]} files"
    clang-format --dry-run --Werror "${files[@]}"
}

# run_ctest DIR [ARGS...]: runs the suite in DIR; sets ctest_note to what it counted.
ctest_note=
run_ctest() {
    local log status=0 dir=$1
    shift
    log=$(mktemp)
    ctest --test-dir "$dir" --output-on-failure -j2 --timeout 300 --no-tests=error \
        "$@" "${ctest_args[@]}" 2>&1 | tee "$log" || status=$?
    # "100% tests passed, 0 tests failed out of 57" -> "57 tests" or "3 of 57 failed"
    ctest_note=$(sed -n 's/.* \([0-9][0-9]*\) tests* failed out of \([0-9][0-9]*\).*/\1 \2/p' "$log" |
        awk 'END { if (NR) print ($1 == 0 ? $2 " tests" : $1 " of " $2 " failed") }')
    [[ -n $ctest_note ]] || ctest_note="no tests ran"
    rm -f "$log"
    return "$status"
}

start=$SECONDS
stage "dependencies"
bash "$setup" --deps-only --test-deps || die "could not install the build and test dependencies"
if [[ ${CI:-} == true ]]; then
    cmake --version | head -n 1
    g++ --version | head -n 1
    clang-format --version
    shellcheck --version | sed -n 2p
fi

if ((run_main)); then
    stage "format: clang-format --dry-run --Werror"
    status=0
    check_format || status=$?
    record format "$status"

    stage "shellcheck -x"
    status=0
    shellcheck -x scripts/*.sh scripts/lib/*.sh scripts/slurm/zfarm.sbatch tests/support/*.sh \
        bench/*.sh .ci/run || status=$?
    record shellcheck "$status"

    stage "build: build/ with -DZFARM_WERROR=ON"
    status=0
    ZFARM_BUILD_DIR=build ZFARM_WERROR=ON ZFARM_SANITIZER='' bash "$setup" --no-deps || status=$?
    record build "$status"
    build_failed=$status
    if ((status == 0)); then
        stage "ctest: build/"
        status=0
        run_ctest build || status=$?
        record ctest "$status" "$ctest_note"

        stage "install: scripts/check-install.sh --build-dir build"
        status=0
        bash scripts/check-install.sh --build-dir build || status=$?
        record install "$status"
    else
        failed+=("ctest, install (not run: build failed)")
    fi
else
    skipped+=(format shellcheck build ctest install)
fi

# The sanitizer build would fail the same way as the main one: save the time.
if ((run_asan && ${build_failed:-0})); then
    run_asan=0
    skipped+=("asan-build, asan-ctest (build failed)")
fi
if ((run_asan)); then
    stage "asan-build: build-asan/ with -DZFARM_SANITIZER=address,undefined -DZFARM_WERROR=ON"
    status=0
    ZFARM_BUILD_DIR=build-asan ZFARM_BUILD_TYPE=Debug ZFARM_SANITIZER=address,undefined \
        ZFARM_WERROR=ON bash "$setup" --no-deps || status=$?
    record asan-build "$status"
    if ((status == 0)); then
        stage "asan-ctest: build-asan/"
        export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
        export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
        status=0
        run_ctest build-asan -E '^(LaunchScripts[A-Za-z]*|Slurm[A-Za-z]*|BenchSmoke)\.' || status=$?
        record asan-ctest "$status" "$ctest_note"
    else
        failed+=("asan-ctest (not run: asan-build failed)")
    fi
elif ((!${build_failed:-0})); then
    skipped+=(asan-build asan-ctest)
fi
if ((run_asan)); then
    stage "fuzz: scripts/fuzz.sh --seconds ${ZFARM_FUZZ_SECONDS:-60}"
    status=0
    bash scripts/fuzz.sh --seconds "${ZFARM_FUZZ_SECONDS:-60}" || status=$?
    record fuzz "$status"
elif ((!${build_failed:-0})); then
    skipped+=(fuzz)
fi

join() {
    local out=$1 item
    shift
    for item; do out+=", $item"; done
    echo "$out"
}
# One closing line, e.g. "test.sh: PASSED in 312 s: format, shellcheck, ...".
if ((${#failed[@]})); then
    summary="FAILED in $((SECONDS - start)) s: $(join "${failed[@]}")"
    ((${#passed[@]})) && summary+="; passed: $(join "${passed[@]}")"
else
    summary="PASSED in $((SECONDS - start)) s: $(join "${passed[@]}")"
fi
((${#skipped[@]})) && summary+="; skipped: $(join "${skipped[@]}")"
printf '\ntest.sh: %s\n' "$summary"
((${#failed[@]} == 0))
