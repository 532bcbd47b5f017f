# shellcheck shell=bash
# What the launch scripts that start a whole job share (tmux.sh,
# ssh-launch.sh, run-local.sh, zfarm.sbatch): this build's programs, and the
# ventilator arguments they pass through. Sourced; the caller defines die().

# zfarm_bin NAME: this build's bin directory (ZFARM_BUILD_DIR, default
# build/ of this repository), built by setup.sh first when its programs are
# missing. NAME is the calling script's, for the message.
zfarm_bin() {
    local repo bin
    repo=$(dirname "$(dirname "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")")")
    bin=${ZFARM_BUILD_DIR:-$repo/build}/bin
    if [[ ! -x $bin/zfarm-sink || ! -x $bin/zfarm-worker || ! -x $bin/zfarm-ventilator ]]; then
        echo "$1: $bin has no zfarm binaries yet; building them (scripts/setup.sh)" >&2
        bash "$repo/scripts/setup.sh" >&2
    fi
    readlink -f "$bin"
}

# vent_workload ARRAY: checks the ventilator arguments held in the array
# named ARRAY. The endpoints are the script's to pick (die when given), and
# with no workload given the ZeroMQ Guide's (--demo 100) is appended. Flags
# the script does not know, such as those of later ventilators, pass as they
# are.
vent_workload() {
    local -n vent=$1
    local a has=0
    for a in "${vent[@]}"; do
        case "$a" in
        --) # a command: everything after it is the command's
            has=1
            break
            ;;
        --demo | --demo=* | --echo | --echo=* | --sleep | --sleep=* | --spin | --spin=* | \
            --tasks-file | --tasks-file=* | --input | --input=*) has=1 ;;
        --tasks | --tasks=* | --credit | --credit=* | --results | --results=* | --control | \
            --control=* | --sink | --sink=*)
            die "$a: the script picks the endpoints itself"
            ;;
        esac
    done
    ((has)) || vent+=(--demo 100)
}

# vent_expect ARRAY N [MIN]: tells the ventilator whose arguments the array
# named ARRAY holds how many workers the launch started (--expect-workers N,
# and --min-workers MIN when given), so that by its --connect-deadline it
# reports which connected, and fails the job when too few did instead of
# waiting for them forever. Left as it is when it has --expect-workers or
# --min-workers already: the user's say.
vent_expect() {
    local -n expect_args=$1
    local a
    for a in "${expect_args[@]}"; do
        case "$a" in
        --) break ;; # the command's words follow
        --expect-workers | --expect-workers=* | --min-workers | --min-workers=*) return 0 ;;
        esac
    done
    local flags=(--expect-workers "$2")
    [[ -z ${3:-} ]] || flags+=(--min-workers "$3")
    expect_args=("${flags[@]}" "${expect_args[@]}")
}

# vent_reads_stdin ARG...: true when a ventilator given these arguments reads
# its standard input: a command job without --input FILE, or --tasks-file -.
vent_reads_stdin() {
    local i next input=''
    for ((i = 1; i <= $#; i++)); do
        next=$((i + 1))
        case "${!i}" in
        --) # a command job: its tasks are the lines of --input, or of stdin
            [[ -z $input || $input == - ]]
            return
            ;;
        --input) input=${!next:-} ;;
        --input=*) input=${!i#--input=} ;;
        --tasks-file) [[ ${!next:-} == - ]] && return 0 ;;
        --tasks-file=-) return 0 ;;
        esac
    done
    return 1
}

# log_tail FILE [N]: the last N (default 15) lines of FILE on stderr, under
# its name.
log_tail() {
    printf -- '--- %s (last lines)\n' "$1" >&2
    tail -n "${2:-15}" "$1" >&2 2>/dev/null || true
}
