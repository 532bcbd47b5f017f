# shellcheck shell=bash
# Starting zfarm on other machines over ssh (ssh-launch.sh): the hosts file,
# the head address workers connect back to, the sh script that runs a host
# line's workers there and stops them when its ssh session ends, and those
# that run the sink and the ventilator on another head (--head).
# Sourced; the caller defines die().

# parse_dest TEXT: splits `[USER@]HOST[:PORT]` (an IPv6 address in
# brackets) into dest_dest (USER@HOST, ssh's destination), dest_port (PORT or
# "") and dest_name (HOST). Returns 1 when TEXT is not that, 2 when PORT is
# not 1 to 65535.
parse_dest() {
    local re='^(([A-Za-z0-9._][A-Za-z0-9._-]*)@)?'
    re+='(\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9._][A-Za-z0-9._-]*))(:([0-9]{1,5}))?$'
    [[ $1 =~ $re ]] || return 1
    local user=${BASH_REMATCH[2]} port=${BASH_REMATCH[7]}
    dest_name=${BASH_REMATCH[4]:-${BASH_REMATCH[5]}}
    dest_dest=${user:+$user@}$dest_name
    dest_port=${port:+$((10#$port))}
    [[ -z $port ]] || ((dest_port >= 1 && dest_port <= 65535)) || return 2
}

# read_hosts FILE: parses the hosts file, one `[N/][USER@]HOST[:PORT]` a line
# (IPv6 addresses in brackets, `#` comments, blank lines skipped), into the
# arrays, indexed from 1 in the file's order, host_dest (USER@HOST, ssh's destination), host_port (PORT or ""),
# host_name (HOST, which names the workers), host_label (the line's text)
# and host_workers (N). Dies on a line that is none of these, naming it.
# shellcheck disable=SC2034 # the arrays are the caller's
read_hosts() {
    local file=$1 line n=0 k=0 text count dest status
    host_dest=() host_port=() host_name=() host_label=() host_workers=()
    while IFS= read -r line || [[ -n $line ]]; do
        n=$((n + 1))
        text=${line%%#*}
        text=${text#"${text%%[![:space:]]*}"}
        text=${text%"${text##*[![:space:]]}"}
        [[ -n $text ]] || continue
        count=1 dest=$text
        if [[ $text =~ ^([0-9]+)/(.*)$ ]]; then
            count=${BASH_REMATCH[1]} dest=${BASH_REMATCH[2]}
        fi
        status=0
        parse_dest "$dest" || status=$?
        ((status != 1)) || die "$file:$n: '$text' is not [N/][USER@]HOST[:PORT]"
        if [[ ! $count =~ ^0*[1-9][0-9]{0,3}$ ]] || ((10#$count > 1024)); then
            die "$file:$n: the number of workers is 1 to 1024, not $count"
        fi
        ((status != 2)) || die "$file:$n: port ${dest##*:} is not 1 to 65535"
        k=$((k + 1))
        host_dest[k]=$dest_dest
        host_port[k]=$dest_port
        host_name[k]=$dest_name
        host_label[k]=$dest
        host_workers[k]=$((10#$count))
    done <"$file"
}

# head_address ADDR: the address, of those $SSH_CONNECTION shows a remote
# sshd saw this machine connect from, that its workers connect back to.
# Fails for an IPv6 one: zfarm's programs listen on IPv4 only.
head_address() {
    case "$1" in
    ::1) echo 127.0.0.1 ;;
    ::ffff:*.*.*.*) echo "${1#::ffff:}" ;;
    '' | *:*) return 1 ;;
    *) echo "$1" ;;
    esac
}

# bind_address GIVEN ADDR...: where the sink and the ventilator bind. GIVEN
# (--head-addr) when it is an IPv4 address of this machine, all addresses
# when it is anything else; without GIVEN, loopback when every ADDR (the
# head addresses the hosts use) is a loopback one, all addresses otherwise.
bind_address() {
    local given=$1 a
    shift
    if [[ -n $given ]]; then
        if [[ $given =~ ^[0-9.]+$ ]] && ip -o -4 addr show 2>/dev/null | grep -qF " inet $given/"; then
            echo "$given"
        else
            echo 0.0.0.0
        fi
        return
    fi
    for a in "$@"; do
        [[ $a == 127.* ]] || {
            echo 0.0.0.0
            return
        }
    done
    echo 127.0.0.1
}

# sq WORD: WORD quoted for any POSIX shell (ssh hands its command to the
# remote user's shell as one string).
sq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

# The sh script a host line's ssh session runs: worker_script N NAME FIRST
# CLEAN BIN WORKER_ARG... starts N zfarm-worker from BIN, named NAME-FIRST,
# NAME-FIRST+1, ..., each with WORKER_ARGs, and says on its stdout `started
# ID PID` and `exited ID STATUS` for each (their logs go to its stderr). It
# ends when they all have, removing the directory CLEAN when given (a
# --transfer copy).
#
# When its standard input closes (the launcher closes it, or the ssh client
# or the connection dies), it stops them as on Ctrl-C: SIGTERM to its process
# group (the session sshd started; each worker then kills its commands'
# process groups), another 3 s later (abandon running tasks), SIGKILL 2 s
# after that. It ignores SIGTERM itself, and so do its subshells; the
# workers install their own handler. SIGPIPE is ignored so that a lost
# session cannot kill it before its workers. Once they have all exited, a
# SIGHUP to the group (which it ignores then) ends the watch on stdin.
# shellcheck disable=SC2016,SC2034 # expanded by the remote sh; the caller's
worker_script='trap "" TERM PIPE
n=$1 name=$2 first=$3 clean=$4 bin=$5
shift 5
if [ ! -x "$bin/zfarm-worker" ]; then
    echo "$bin/zfarm-worker: no such program on $(uname -n) (see --remote-bin, --transfer)" >&2
    [ -z "$clean" ] || rm -rf "$clean"
    exit 127
fi
exec 3<&0 </dev/null
( while read -r _; do :; done; kill -TERM 0; sleep 3; kill -TERM 0; sleep 2; kill -KILL 0 ) \
    <&3 >/dev/null 2>&1 &
exec 3<&-
reporters="" i=0
while [ "$i" -lt "$n" ]; do
    id=$name-$((first + i))
    ( "$bin/zfarm-worker" --id "$id" "$@" >&2 &
      echo "started $id $!"
      wait $!
      echo "exited $id $?" ) &
    reporters="$reporters $!"
    i=$((i + 1))
done
for r in $reporters; do wait "$r"; done
trap "" HUP
kill -HUP 0
[ -z "$clean" ] || rm -rf "$clean"'

# The sh script of the head's first ssh session (ssh-launch.sh --head):
# head_script BIN COPY makes a temporary directory there, which the head's
# other sessions share, and prints its path once zfarm-sink and
# zfarm-ventilator are found in BIN (COPY 1: they are to be copied into the
# directory instead). It then holds the session open until its standard
# input closes (the launcher is done, interrupted or gone), stops the
# programs the head's other sessions run (run_script; their PIDs are in the
# directory): the ventilator first, with up to 3 s to cancel its job on the
# sink, then both: SIGTERM, again 3 s later, SIGKILL 2 s after that; and
# removes the directory. It marks the directory `closing` before it looks
# for PIDs, and run_script checks for the mark after writing its PID, so a
# program started meanwhile is stopped by one or the other.
# shellcheck disable=SC2016,SC2034 # expanded by the remote sh; the caller's
head_script='bin=$1 copy=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/zfarm-head.XXXXXX") || exit 1
if [ "$copy" = 0 ]; then
    for p in zfarm-sink zfarm-ventilator; do
        [ -x "$bin/$p" ] && continue
        echo "$bin/$p: no such program on $(uname -n) (see --remote-bin, --transfer)" >&2
        rm -rf "$tmp"
        exit 127
    done
fi
echo "$tmp"
while read -r _; do :; done
: >"$tmp/closing"
if [ -f "$tmp/ventilator.pid" ]; then
    v=$(cat "$tmp/ventilator.pid")
    kill -TERM "$v" 2>/dev/null
    i=0
    while [ "$i" -lt 3 ] && kill -0 "$v" 2>/dev/null; do
        sleep 1
        i=$((i + 1))
    done
fi
running() {
    for f in "$tmp/ventilator.pid" "$tmp/sink.pid"; do
        [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && cat "$f"
    done
}
for step in "TERM 3" "TERM 2" "KILL 0"; do
    set -- $step
    pids=$(running)
    [ -n "$pids" ] || break
    kill -"$1" $pids 2>/dev/null
    i=0
    while [ "$i" -lt "$2" ] && [ -n "$(running)" ]; do
        sleep 1
        i=$((i + 1))
    done
done
rm -rf "$tmp"'

# The sh script of each other session on the head: run_script DIR NAME
# PROGRAM ARG... runs PROGRAM with ARGs on the session's standard streams,
# its PID in DIR/NAME.pid (for head_script to stop it by) while it runs, and
# exits with its status. When DIR is gone or marked closing (head_script
# is stopping or has ended) it stops PROGRAM at once.
# shellcheck disable=SC2016,SC2034 # expanded by the remote sh; the caller's
run_script='dir=$1 name=$2
shift 2
exec 3<&0
"$@" <&3 3<&- &
pid=$!
exec 3<&-
if ! echo "$pid" 2>/dev/null >"$dir/$name.pid" || [ -e "$dir/closing" ]; then
    echo "$name: the head session has ended; stopping" >&2
    kill -TERM "$pid"
fi
wait "$pid"
status=$?
rm -f "$dir/$name.pid"
exit "$status"'

# remote_command SCRIPT NAME ARG...: the command line for ssh that runs the
# sh script SCRIPT (as $0 NAME) with ARGs on the remote host.
remote_command() {
    local a out
    out="exec sh -c $(sq "$1") $(sq "$2")"
    shift 2
    for a in "$@"; do out+=" $(sq "$a")"; done
    printf '%s' "$out"
}
