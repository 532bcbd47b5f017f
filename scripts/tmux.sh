#!/usr/bin/env bash
# Runs one zfarm job in a tmux session with a pane per program (sink,
# workers, ventilator), so that the pipeline can be watched live: the
# "several terminals" way in one command. --kill tears the session down with
# every process it started.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: scripts/tmux.sh [OPTIONS] [VENTILATOR_ARGS...] [-- CMD ARG...]
       scripts/tmux.sh --kill [--session NAME] [-L SOCKET]

Starts zfarm-sink (--once), N zfarm-worker (--exit-when-done) and
zfarm-ventilator on free localhost ports, each in its own pane of a new tmux
session, and attaches to it (when run from a terminal). Each pane shows its
program's output and keeps it after the program exits ("Pane is dead (status
N)"); the same output goes to NAME.log in the log directory. Window 1 holds
the sink, the ventilator (its log, then its summary line) and the first
workers; further workers get windows of 8 panes.

  scripts/tmux.sh -j 4 --demo 200 --dispatch credit
  scripts/tmux.sh --kill

Options:
  -j N              number of workers (default: the number of cores)
  --threads N       executor threads per worker (default 1)
  --allow-exec      let the workers run commands (exec tasks)
  --worker-arg ARG  pass ARG to every worker (repeatable)
  --sink-arg ARG    pass ARG to the sink (repeatable)
  -o FILE           the sink's results file (default: results.jsonl in the
                    log directory)
  --dir DIR         put logs (and results) in DIR (default: a new
                    temporary directory)
  --session NAME    tmux session name (default zfarm)
  -L SOCKET         use tmux server socket SOCKET (tmux -L), e.g. to keep the
                    session off your usual tmux server
  -d, --detach      do not attach to the session
  --wait            do not attach; wait for the job and exit with the
                    ventilator's status (the session stays until --kill)
  --kill            stop every process of session NAME (TERM, then KILL, to
                    whole process trees) and end the session
  -h, --help        show this help

Anything else goes to the ventilator, and so does `-- CMD ARG...`, the
command of a command job (zfarm-ventilator's own syntax). With no workload
given it runs the ZeroMQ Guide's (--demo 100). A job that reads its tasks
from standard input (a command job without --input FILE, --tasks-file -)
reads this script's: piped in, it is saved to ventilator.in first; from a
terminal, type the lines into the ventilator's pane.

A worker that exits with an error within its first second is reported with
the last lines of its log; when none is left, the session is ended and the
script exits 1. The ventilator is told how many workers were started
(--expect-workers N --min-workers 1, unless you give --expect-workers or
--min-workers): by its --connect-deadline (default 30 s) it logs how many
connected, and cancels the job (exit 2) when none did.

Exit status: 0 once the session runs (--wait: the ventilator's status: 0
all tasks ok, 1 some failed), 1 when the programs could not be started or
(--wait) the sink exited first, 2 bad usage or no tmux.
Environment: ZFARM_BUILD_DIR (default build), TMPDIR.
EOF
}

die() {
    printf 'tmux.sh: %s\n' "$*" >&2
    exit 2
}

workers=$(nproc 2>/dev/null || echo 2) threads=1 dir='' output='' session=zfarm
socket=() attach=1 wait=0 kill=0
worker_extra=() sink_extra=() vent_args=()
while (($#)); do
    case "$1" in
    -j)
        (($# >= 2)) || die "-j needs a number"
        workers=$2
        shift
        ;;
    -j*) workers=${1#-j} ;;
    --threads)
        (($# >= 2)) || die "--threads needs a number"
        threads=$2
        shift
        ;;
    --allow-exec) worker_extra+=(--allow-exec) ;;
    --worker-arg)
        (($# >= 2)) || die "--worker-arg needs a value"
        worker_extra+=("$2")
        shift
        ;;
    --worker-arg=*) worker_extra+=("${1#--worker-arg=}") ;;
    --sink-arg)
        (($# >= 2)) || die "--sink-arg needs a value"
        sink_extra+=("$2")
        shift
        ;;
    --sink-arg=*) sink_extra+=("${1#--sink-arg=}") ;;
    -o)
        (($# >= 2)) || die "-o needs a file"
        output=$2
        shift
        ;;
    --dir)
        (($# >= 2)) || die "--dir needs a directory"
        dir=$2
        shift
        ;;
    --session)
        (($# >= 2)) || die "--session needs a name"
        session=$2
        shift
        ;;
    --session=*) session=${1#--session=} ;;
    -L)
        (($# >= 2)) || die "-L needs a socket name"
        socket=(-L "$2")
        shift
        ;;
    -d | --detach) attach=0 ;;
    --wait) wait=1 attach=0 ;;
    --kill) kill=1 ;;
    -h | --help)
        usage
        exit 0
        ;;
    --) # the ventilator's command follows: it is the ventilator's, with its --
        vent_args+=("$@")
        break
        ;;
    *) vent_args+=("$1") ;;
    esac
    shift
done
# tmux takes '.' and ':' in a target as window and pane separators.
[[ $session =~ ^[A-Za-z0-9_-]{1,64}$ ]] ||
    die "--session takes letters, digits, '-' and '_', not '$session'"
command -v tmux >/dev/null 2>&1 || die "tmux is not installed (Debian: apt-get install tmux)"

tm() { tmux "${socket[@]}" "$@"; }

here=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
# shellcheck source=scripts/lib/pipeline.sh
source "$here/lib/pipeline.sh" # ports, and stop_pids: TERM, then KILL, to whole process trees
# shellcheck source=scripts/lib/launch.sh
source "$here/lib/launch.sh"

# kill_session: stops the programs of every live pane of the session, with
# their descendants (a worker's commands too), then ends the session. The
# ventilator goes first, so that its job is cancelled and the workers stop
# its tasks; the panes' own shells and tees are left to end with their
# program, so that each program's tree stays whole until it is gone.
kill_session() {
    local dead pid title child comm vent=() others=()
    while read -r dead pid title; do
        ((dead)) && continue
        while read -r child comm; do
            [[ $comm == tee ]] && continue
            if [[ $title == ventilator ]]; then vent+=("$child"); else others+=("$child"); fi
        done < <(ps -o pid=,comm= --ppid "$pid" 2>/dev/null)
    done < <(tm list-panes -s -t "=$session" -F '#{pane_dead} #{pane_pid} #{pane_title}' 2>/dev/null)
    ((${#vent[@]} == 0)) || stop_pids "${vent[@]}"
    ((${#others[@]} == 0)) || stop_pids "${others[@]}"
    tm kill-session -t "=$session" 2>/dev/null || true
}

if ((kill)); then
    if ! tm has-session -t "=$session" 2>/dev/null; then
        echo "tmux.sh: no tmux session '$session' to kill" >&2
        exit 1
    fi
    logs=$(tm show-options -v -t "=$session" @zfarm_dir 2>/dev/null || true)
    kill_session
    echo "tmux.sh: session '$session' ended${logs:+; logs in $logs}" >&2
    exit 0
fi

if [[ ! $workers =~ ^[1-9][0-9]{0,2}$ ]] || ((workers > 256)); then
    die "-j takes a number from 1 to 256, not '$workers'"
fi
[[ $threads =~ ^[1-9][0-9]{0,3}$ ]] || die "--threads takes a positive number, not '$threads'"
vent_workload vent_args
# The session goes on with the workers that started: the job fails (exit 2)
# only when none has connected by the ventilator's --connect-deadline.
vent_expect vent_args "$workers" 1
if tm has-session -t "=$session" 2>/dev/null; then
    die "tmux session '$session' exists already: attach to it (tmux attach -t $session) or end it (scripts/tmux.sh --kill --session $session)"
fi

bin=$(zfarm_bin tmux.sh)
if [[ -z $dir ]]; then
    dir=$(mktemp -d "${TMPDIR:-/tmp}/zfarm-tmux.XXXXXX")
else
    mkdir -p "$dir" || die "cannot create --dir $dir"
fi
dir=$(readlink -f "$dir")
[[ -n $output ]] || output=$dir/results.jsonl

vent_input=/dev/null
if vent_reads_stdin "${vent_args[@]}"; then
    if [[ -t 0 ]]; then
        vent_input=- # the pane's terminal
    else
        vent_input=$dir/ventilator.in
        cat >"$vent_input"
    fi
fi

# Each pane runs its program under this: output to the pane and to NAME.log
# (tee ignores Ctrl-C, so a program stopping on it can still say so), the
# exit status to NAME.status. The pane lingers 0.2 s after the program:
# tmux 3.3 can lose what a pane's program wrote just before the pane died
# (a ventilator's report and summary, seen in tests), and the status is
# written after, so --wait returns once the pane shows it all.
# shellcheck disable=SC2016 # expanded by the pane's bash
runner='log=$1 status=$2 input=$3
shift 3
if [[ $input == - ]]; then "$@" 2>&1 | tee -i -a "$log"; else "$@" <"$input" 2>&1 | tee -i -a "$log"; fi
s=${PIPESTATUS[0]}
sleep 0.2
echo "$s" >"$status"
exit "$s"'

# open_pane NAME WHERE INPUT PROGRAM ARG...: runs PROGRAM in a new pane titled
# NAME; WHERE is "session" (the first pane), "window" (a new window) or
# "split" (the current window). Sets pane_id and pane_pid.
panes_in_window=0
open_pane() {
    local name=$1 where=$2 input=$3 made
    shift 3
    local cmd=(bash -c "$runner" "$name" "$dir/$name.log" "$dir/$name.status" "$input" "$@")
    rm -f "$dir/$name.status"
    # Options set in the same tmux command run before the pane can exit, so
    # even a program that fails at once leaves its pane.
    local opts=(\; set-option -w remain-on-exit on \; set-option -w pane-border-status top
        \; set-option -w pane-border-format ' #{pane_title} ')
    local format=(-P -F '#{pane_id} #{pane_pid}')
    case "$where" in
    session)
        made=$(tm new-session -d -s "$session" -n zfarm -x 200 -y 50 "${format[@]}" -- \
            "${cmd[@]}" "${opts[@]}" \; set-option @zfarm_dir "$dir")
        panes_in_window=1
        ;;
    window)
        made=$(tm new-window -d -t "=$session:" -n "$name" "${format[@]}" -- "${cmd[@]}" "${opts[@]}")
        panes_in_window=1
        ;;
    split)
        made=$(tm split-window -d -t "$pane_id" "${format[@]}" -- "${cmd[@]}" \
            \; select-layout -t "$pane_id" tiled)
        panes_in_window=$((panes_in_window + 1))
        ;;
    esac
    read -r pane_id pane_pid <<<"$made"
    tm select-pane -t "$pane_id" -T "$name"
}

status_of() { cat "$dir/$1.status" 2>/dev/null || true; }
lost_port_race() { grep -qi 'address already in use' "$dir/$1.log"; }

# Until the session runs, a failure ends it with what it started.
trap 'kill_session' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# The sink first, then the ventilator, each once its ports listen (a bind
# that loses a race for a port is retried on new ones); the workers last, so
# they connect at once.
for attempt in 1 2 3; do
    pr=$(pick_port) || exit 2
    pc=$(pick_port) || exit 2
    chosen+=("$pr" "$pc")
    : >"$dir/sink.log"
    open_pane sink session /dev/null "$bin/zfarm-sink" --once -o "$output" \
        --results "$(ep "$pr")" --control "$(ep "$pc")" "${sink_extra[@]}"
    wait_listening all "$pane_pid" "$pr" "$pc" && break
    kill_session
    if ((attempt == 3)) || ! lost_port_race sink; then
        log_tail "$dir/sink.log"
        echo "tmux.sh: the sink did not start listening; logs in $dir" >&2
        exit 1
    fi
done
sink_pane=$pane_id

for attempt in 1 2 3; do
    pt=$(pick_port) || exit 2
    pk=$(pick_port) || exit 2
    chosen+=("$pt" "$pk")
    : >"$dir/ventilator.log"
    pane_id=$sink_pane
    open_pane ventilator split "$vent_input" "$bin/zfarm-ventilator" \
        --tasks "$(ep "$pt")" --credit "$(ep "$pk")" --results "$(ep "$pr")" \
        --control "$(ep "$pc")" "${vent_args[@]}"
    wait_listening any "$pane_pid" "$pt" "$pk" && break
    if ((attempt == 3)) || ! lost_port_race ventilator; then
        log_tail "$dir/ventilator.log"
        echo "tmux.sh: the ventilator did not start; logs in $dir" >&2
        exit 1
    fi
    stop_pids "$pane_pid"
    tm kill-pane -t "$pane_id"
    panes_in_window=$((panes_in_window - 1))
done

for ((i = 1; i <= workers; i++)); do
    where='split'
    ((panes_in_window < 8)) || where=window
    open_pane "worker-$i" "$where" /dev/null "$bin/zfarm-worker" --exit-when-done \
        --id "worker-$i" --threads "$threads" --tasks "$(ep "$pt")" --credit "$(ep "$pk")" \
        --results "$(ep "$pr")" --control "$(ep "$pc")" "${worker_extra[@]}"
done

# A worker that fails at start-up (a bad --worker-arg, say) does so within
# its first second: show why, and give up when none is left.
for ((t = 0; t < 10; t++)); do
    failed=0
    for ((i = 1; i <= workers; i++)); do
        s=$(status_of "worker-$i")
        [[ -n $s && $s != 0 ]] && failed=$((failed + 1))
    done
    ((failed < workers)) || break
    sleep 0.1
done
started=0
for ((i = 1; i <= workers; i++)); do
    s=$(status_of "worker-$i")
    if [[ -z $s || $s == 0 ]]; then
        started=$((started + 1))
    else
        echo "tmux.sh: worker-$i exited with status $s at start-up" >&2
        log_tail "$dir/worker-$i.log" 5
    fi
done
if ((started == 0)); then
    echo "tmux.sh: no worker could start; session ended, logs in $dir" >&2
    exit 1
fi
trap - EXIT

printf 'tmux.sh: session %s: %d worker(s); logs in %s; results in %s\n' \
    "$session" "$workers" "$dir" "$output" >&2
printf 'tmux.sh: attach with: tmux %sattach -t %s; end with: scripts/tmux.sh %s--kill --session %s\n' \
    "${socket[*]:+${socket[*]} }" "$session" "${socket[*]:+${socket[*]} }" "$session" >&2

if ((wait)); then
    # The ventilator leaves once the job is done; the sink must not leave before it.
    while [[ -z $(status_of ventilator) ]]; do
        if [[ -n $(status_of sink) ]]; then
            echo "tmux.sh: the sink exited before the job finished (status $(status_of sink))" >&2
            log_tail "$dir/sink.log"
            exit 1
        fi
        if ! tm has-session -t "=$session" 2>/dev/null; then
            echo "tmux.sh: session '$session' ended before the job finished" >&2
            exit 1
        fi
        sleep 0.1
    done
    exit "$(status_of ventilator)"
fi
if ((attach)) && [[ -t 0 && -t 1 ]]; then
    if [[ -n ${TMUX:-} ]]; then
        tm switch-client -t "=$session" 2>/dev/null || true
    else
        exec tmux "${socket[@]}" attach -t "=$session"
    fi
fi
