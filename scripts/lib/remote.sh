# shellcheck shell=bash
# Starting zfarm workers on other machines over ssh (ssh-launch.sh): the hosts
# file, the head address workers connect back to, and the sh script that
# runs a host line's workers there and stops them when its ssh session ends.
# Sourced; the caller defines die().

# read_hosts FILE: parses the hosts file, one `[N/][USER@]HOST[:PORT]` a line
# (IPv6 addresses in brackets, `#` comments, blank lines skipped), into the
# arrays, indexed from 1 in the file's order, host_dest (USER@HOST, ssh's destination), host_port (PORT or ""),
# host_name (HOST, which names the workers), host_label (the line's text)
# and host_workers (N). Dies on a line that is none of these, naming it.
# shellcheck disable=SC2034 # the arrays are the caller's
read_hosts() {
    local file=$1 line n=0 k=0 text count user name port
    host_dest=() host_port=() host_name=() host_label=() host_workers=()
    local re='^(([0-9]+)/)?(([A-Za-z0-9._][A-Za-z0-9._-]*)@)?'
    re+='(\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9._][A-Za-z0-9._-]*))(:([0-9]{1,5}))?$'
    while IFS= read -r line || [[ -n $line ]]; do
        n=$((n + 1))
        text=${line%%#*}
        text=${text#"${text%%[![:space:]]*}"}
        text=${text%"${text##*[![:space:]]}"}
        [[ -n $text ]] || continue
        [[ $text =~ $re ]] || die "$file:$n: '$text' is not [N/][USER@]HOST[:PORT]"
        count=${BASH_REMATCH[2]:-1} user=${BASH_REMATCH[4]}
        name=${BASH_REMATCH[6]:-${BASH_REMATCH[7]}} port=${BASH_REMATCH[9]}
        if [[ ! $count =~ ^0*[1-9][0-9]{0,3}$ ]] || ((10#$count > 1024)); then
            die "$file:$n: the number of workers is 1 to 1024, not $count"
        fi
        if [[ -n $port ]] && ((10#$port < 1 || 10#$port > 65535)); then
            die "$file:$n: port $port is not 1 to 65535"
        fi
        k=$((k + 1))
        host_dest[k]=${user:+$user@}$name
        host_port[k]=${port:+$((10#$port))}
        host_name[k]=$name
        host_label[k]=${text#*/}
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
# shellcheck disable=SC2016 # expanded by the remote sh
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

# remote_command ARG...: the command line for ssh that runs worker_script
# with ARGs under sh on the remote host.
remote_command() {
    local a out
    out="exec sh -c $(sq "$worker_script") zfarm-workers"
    for a in "$@"; do out+=" $(sq "$a")"; done
    printf '%s' "$out"
}
