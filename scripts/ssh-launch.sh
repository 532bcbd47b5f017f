#!/usr/bin/env bash
# Runs one zfarm job over a list of machines: the sink and the ventilator on
# this one (or on another, the head, over ssh), the workers started over ssh
# on the hosts of a hosts file (GNU parallel's --sshloginfile, in spirit).
# Hosts that cannot be reached are reported and left out; every remote
# process is stopped when the script exits, however it exits.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: scripts/ssh-launch.sh --hosts FILE [OPTIONS] [VENTILATOR_ARGS...] [-- CMD ARG...]

Starts zfarm-sink (--once) and zfarm-ventilator on this machine, or with
--head HOST on HOST over ssh (the head), on free ports, then zfarm-worker
(--exit-when-done) on every host of FILE over ssh, connecting to the head,
and waits for the job. The ventilator reads this script's standard input
and prints its summary here; the sink, the ventilator, and the workers of
each host line, log to files in the log directory, whose place is printed;
the results land on this machine.

  scripts/ssh-launch.sh --hosts hosts.txt --dispatch credit --demo 1000
  ls *.fastq | scripts/ssh-launch.sh --hosts hosts.txt --transfer --allow-exec \
      --dispatch credit -- gzip -k {}
  scripts/ssh-launch.sh --head alice@head.lan --hosts hosts.txt --demo 1000

Hosts file: one host per line, `[N/][USER@]HOST[:PORT]`: N workers on that
host (default 1), ssh as USER (default: ssh's), to PORT (default: ssh's).
HOST is a name or an address, an IPv6 one in brackets ([fe80::1]:22). `#`
starts a comment; blank lines are skipped. Example:

  # 8 workers on node1, 4 on node2 (ssh port 2222), 1 on gpu as alice
  8/node1
  4/node2:2222
  alice@gpu

Options:
  --hosts FILE      the hosts file (required)
  --threads N       executor threads per worker (default 1)
  --allow-exec      let the workers run commands (exec tasks)
  --worker-arg ARG  pass ARG to every worker (repeatable)
  --sink-arg ARG    pass ARG to the sink (repeatable)
  --ssh-opt OPT     pass OPT, one argument, to every ssh run (repeatable):
                    --ssh-opt=-oIdentityFile=~/.ssh/farm, or --ssh-opt=-F
                    --ssh-opt=my_config. Always given: -o BatchMode=yes (no
                    password prompts), -o ConnectTimeout, -o
                    ServerAliveInterval=5 -o ServerAliveCountMax=3.
  --connect-timeout S  seconds ssh may take to connect (default 10)
  --remote-bin DIR  where zfarm-worker is on the hosts, and zfarm-sink and
                    zfarm-ventilator on the --head (default: this build's
                    bin directory, the same path: a shared file system)
  --transfer        copy this build's programs (over ssh) to a new temporary
                    directory on each host (and the --head) first, and remove
                    it afterwards (they need the same system libraries:
                    libzmq5, libsodium, libstdc++ as on this machine)
  --head HOST       run the sink and the ventilator on HOST, written
                    [USER@]HOST[:PORT] like a hosts file line, over ssh with
                    the same options: see "The head" below
  --head-addr ADDR  the address the workers connect to the head at (default:
                    with --head, HOST; without, the one each host's sshd saw
                    this machine connect from, $SSH_CONNECTION there).
                    Without --head, the sink and the ventilator bind ADDR
                    when it is an IPv4 address of this machine, and all
                    addresses (0.0.0.0) otherwise; without --head-addr they
                    bind 127.0.0.1 when every host reached this machine over
                    loopback, all addresses otherwise.
  -o FILE           the results file, on this machine also with --head
                    (default: results.jsonl in the log directory)
  --dir DIR         put logs (and results) in DIR (default: a new
                    temporary directory)
  --timeout S       stop the job after S seconds (default 0: no limit)
  -h, --help        show this help

Anything else goes to the ventilator, and so does `-- CMD ARG...`, the
command of a command job (zfarm-ventilator's own syntax); with no workload
given it runs the ZeroMQ Guide's (--demo 100). Ventilator flags this script
does not know pass through as they are.

Ports: the workers connect to the head's four ports, which must be open from
every host (printed at start): the sink's results and control ports, and
the ventilator's tasks (push dispatch) or credit (credit dispatch) port.
Nothing needs to be open on the hosts but ssh.

The head (--head HOST): the sink and the ventilator run there, each in an
ssh session of its own that carries its output here: the results (the sink
writes them to its standard output) to -o FILE, its log to sink.log; the
ventilator's log to ventilator.log (shown here as it grows), its summary to
this script's output, and this script's input to it when the job reads
tasks from standard input. Their ports there are the ones they get binding
port 0 (the system's ephemeral range, e.g. 32768-60999: open them from the
hosts), bound on 127.0.0.1 when the workers reach the head at a 127.x
address or localhost, on all addresses otherwise. The workers connect to
HOST as written, or to --head-addr ADDR (when HOST is an ssh alias, or the
hosts reach the head by another name). A first ssh session makes a
temporary directory on the head and holds it: when it ends (the job is
done, Ctrl-C, an error, a killed script or a lost connection) it stops the
sink and the ventilator there (SIGTERM, again 3 s later, SIGKILL 2 s after
that) and removes the directory. The ventilator's start-up line and the
sink's give their ports, so -q (for either) is refused.

Start-up: a host that cannot be reached (ssh fails: which host, and the end
of ssh's error), or whose workers exit with an error within their first
seconds, is reported with the end of its log, and the job goes on with the
others; when no worker could start at all the script exits 1. The
ventilator is told how many workers were started on the hosts reached
(--expect-workers N --min-workers 1, unless you give --expect-workers or
--min-workers): by its --connect-deadline (default 30 s) it logs which
connected, and cancels the job (exit 2) when none did, say when a firewall
keeps them from the head's ports. Each host line's ssh session runs its
workers under a small sh script there, which stops them (SIGTERM, again 3 s
later, SIGKILL 2 s after that) as soon as the session ends: at the end of
the job, on Ctrl-C, on an error, and also when the ssh client or this
script is killed, or the connection is lost.

Exit status: the ventilator's (0 all tasks ok, 1 some failed, 2 bad usage or
no worker connected), 2 when the --head cannot be reached or has no
programs, 1 when no worker could start, the sink failed, every worker
exited before the job ended, --timeout passed, or the connection to the
--head was lost mid-job; 130/143 when interrupted.
Environment: ZFARM_BUILD_DIR (default build), TMPDIR.
EOF
}

die() {
    printf 'ssh-launch.sh: %s\n' "$*" >&2
    exit 2
}
say() { printf 'ssh-launch.sh: %s\n' "$*" >&2; }

hosts_file='' threads=1 timeout=0 dir='' output='' remote_bin='' transfer=0 head_addr='' head=''
connect_timeout=10
worker_extra=() sink_extra=() vent_args=() user_ssh_opts=()
while (($#)); do
    case "$1" in
    --hosts)
        (($# >= 2)) || die "--hosts needs a file"
        hosts_file=$2
        shift
        ;;
    --hosts=*) hosts_file=${1#--hosts=} ;;
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
    --ssh-opt)
        (($# >= 2)) || die "--ssh-opt needs a value"
        user_ssh_opts+=("$2")
        shift
        ;;
    --ssh-opt=*) user_ssh_opts+=("${1#--ssh-opt=}") ;;
    --connect-timeout)
        (($# >= 2)) || die "--connect-timeout needs a number of seconds"
        connect_timeout=$2
        shift
        ;;
    --remote-bin)
        (($# >= 2)) || die "--remote-bin needs a directory"
        remote_bin=$2
        shift
        ;;
    --transfer) transfer=1 ;;
    --head-addr)
        (($# >= 2)) || die "--head-addr needs an address"
        head_addr=$2
        shift
        ;;
    --head)
        (($# >= 2)) || die "--head needs a host"
        head=$2
        shift
        ;;
    --head=*) head=${1#--head=} ;;
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
    --timeout)
        (($# >= 2)) || die "--timeout needs a number of seconds"
        timeout=$2
        shift
        ;;
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
[[ -n $hosts_file ]] || die "--hosts FILE is required (see --help)"
[[ -r $hosts_file && ! -d $hosts_file ]] || die "cannot read the hosts file $hosts_file"
[[ $threads =~ ^[1-9][0-9]{0,3}$ ]] || die "--threads takes a positive number, not '$threads'"
[[ $timeout =~ ^[0-9]{1,7}$ ]] || die "--timeout takes a whole number of seconds, not '$timeout'"
[[ $connect_timeout =~ ^[1-9][0-9]{0,3}$ ]] ||
    die "--connect-timeout takes a positive number of seconds, not '$connect_timeout'"
if [[ -n $head_addr && ! $head_addr =~ ^[A-Za-z0-9.-]+$ ]]; then
    die "--head-addr takes an IPv4 address or a host name, not '$head_addr'"
fi
((!transfer)) || [[ -z $remote_bin ]] || die "--transfer and --remote-bin exclude each other"

here=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
# shellcheck source=scripts/lib/pipeline.sh
source "$here/lib/pipeline.sh" # ports, and stop_pids: TERM, then KILL, to whole process trees
# shellcheck source=scripts/lib/launch.sh
source "$here/lib/launch.sh"
# shellcheck source=scripts/lib/remote.sh
source "$here/lib/remote.sh"

read_hosts "$hosts_file" # host_dest, host_port, host_name, host_label, host_workers
((${#host_dest[@]})) || die "$hosts_file names no host"
vent_workload vent_args

# quiet ARG...: true when ARGs (up to a --, the command's) hold -q or --quiet.
quiet() {
    local a
    for a in "$@"; do
        case "$a" in
        --) return 1 ;;
        -q | --quiet) return 0 ;;
        esac
    done
    return 1
}
if [[ -n $head ]]; then
    status=0
    parse_dest "$head" || status=$?
    ((status == 0)) || die "--head takes [USER@]HOST[:PORT] (PORT 1 to 65535), not '$head'"
    head_dest=$dest_dest head_port=$dest_port
    if [[ -z $head_addr ]]; then
        [[ $dest_name != *:* ]] ||
            die "--head $head: zfarm listens on IPv4 only: give --head-addr, the IPv4 address or name the hosts reach the head at"
        head_addr=$dest_name
    fi
    if quiet "${vent_args[@]}" || quiet "${sink_extra[@]}"; then
        die "--head reads the sink's and the ventilator's ports from their start-up lines, which -q hides"
    fi
fi

bin=$(zfarm_bin ssh-launch.sh)
[[ -n $remote_bin ]] || remote_bin=$bin
if [[ -z $dir ]]; then
    dir=$(mktemp -d "${TMPDIR:-/tmp}/zfarm-ssh.XXXXXX")
else
    mkdir -p "$dir" || die "cannot create --dir $dir"
fi
dir=$(readlink -f "$dir")
[[ -n $output ]] || output=$dir/results.jsonl

ssh_opts=(-o BatchMode=yes -o ConnectTimeout="$connect_timeout" -o ServerAliveInterval=5
    -o ServerAliveCountMax=3 "${user_ssh_opts[@]}")
# ssh_args PORT: the options that reach a host whose ssh port is PORT ("":
# ssh's).
ssh_args() {
    host_args=("${ssh_opts[@]}")
    [[ -z $1 ]] || host_args+=(-o "Port=$1")
}

# Every local process started here (pids, from pipeline.sh); the remote
# sessions (ssh clients) and what holds their standard input open, those of
# the workers by host line, and the head's first one (--head).
session_pids=() holder_pids=() tmp_of=() head_session='' head_holder=''
# shellcheck disable=SC2317 # run by the EXIT trap
stop_all() {
    # The ventilator first (it cancels its job; with --head this stops only
    # its ssh client, and the head's session stops the ventilator there
    # before the sink), then the remote sessions: each one's stdin closes,
    # its script stops the workers (or the head's sink and ventilator) and
    # ends; a session still open after the remote grace (3 + 2 s, and the
    # head's 3 s for its ventilator) is cut.
    [[ -z ${vent_pid:-} ]] || stop_pids "$vent_pid"
    local sessions=("${session_pids[@]}" "$head_session") holders=("${holder_pids[@]}" "$head_holder")
    if [[ -n ${holders[*]} ]]; then
        # shellcheck disable=SC2068 # empty entries dropped
        kill -TERM ${holders[@]} 2>/dev/null || true
        local i pid
        for ((i = 0; i < 110; i++)); do
            for pid in "${sessions[@]}"; do
                [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && break
                pid=
            done
            [[ -z $pid ]] && break
            sleep 0.1
        done
    fi
    ((${#pids[@]} == 0)) || stop_pids "${pids[@]}"
    rm -f "$dir"/host-*.in "$dir/head.in"
    # A --transfer copy whose session never started (the script stopped
    # before) is removed here; a session removes its own.
    local k
    for k in "${!tmp_of[@]}"; do
        [[ -n ${session_pids[k]:-} || -z ${tmp_of[k]} ]] && continue
        ssh_args "${host_port[k]}"
        ssh -n "${host_args[@]}" -- "${host_dest[k]}" "rm -rf $(sq "${tmp_of[k]}")" 2>/dev/null || true
    done
}
trap stop_all EXIT
trap 'say "interrupted; logs in $dir"; exit 130' INT
trap 'exit 143' TERM HUP

# holder FIFO: a process that holds FIFO open for writing as long as this
# script lives (the standard input of a session that ends when it closes).
# Sets holder_pid.
holder() {
    tail -s 1 -f --pid=$$ /dev/null >"$1" &
    holder_pid=$!
    pids+=("$holder_pid")
}

# up_line PID FILE REGEX: waits until a line of FILE matches REGEX (true; its
# groups in BASH_REMATCH), PID exits first, or --connect-timeout + 30 s pass
# (false).
up_line() {
    local i line
    for ((i = 0; i < (connect_timeout + 30) * 10; i++)); do
        line=$(grep -m 1 -E "$3" "$2" 2>/dev/null) && [[ $line =~ $3 ]] && return 0
        if ! kill -0 "$1" 2>/dev/null; then # it may have said it just before
            line=$(grep -m 1 -E "$3" "$2" 2>/dev/null) && [[ $line =~ $3 ]]
            return
        fi
        sleep 0.1
    done
    return 1
}

# 0. With --head, its first session: a directory there, which it holds (and
# whose end stops the head's programs), once its programs are found. An
# unreachable head fails the script at once.
if [[ -n $head ]]; then
    ssh_args "$head_port"
    rm -f "$dir/head.in"
    mkfifo "$dir/head.in"
    ssh "${host_args[@]}" -- "$head_dest" "$(remote_command "$head_script" zfarm-head \
        "$remote_bin" "$transfer")" <"$dir/head.in" >"$dir/head.out" 2>"$dir/head.log" &
    head_session=$!
    pids+=("$head_session")
    holder "$dir/head.in"
    head_holder=$holder_pid
    if ! up_line "$head_session" "$dir/head.out" '^(/.*)$'; then
        status=0
        kill -0 "$head_session" 2>/dev/null || wait "$head_session" || status=$?
        why=$(tail -n 1 "$dir/head.log" | tr -d "\r") # ssh ends its lines with CR LF
        case "$status" in
        0) die "the head $head did not answer within $((connect_timeout + 30)) s" ;;
        255) die "the head $head cannot be reached (ssh exited 255): ${why:-no error message}" ;;
        *) die "the head $head: ${why:-ssh exited $status}" ;;
        esac
    fi
    head_tmp=${BASH_REMATCH[1]}
    head_bin=$remote_bin
    ((!transfer)) || head_bin=$head_tmp
fi

# 1. Reach every host at once: where it sees this machine from (the head
# address its workers use, unless --head-addr or --head says), and with
# --transfer a temporary directory there.
# shellcheck disable=SC2016 # expanded there
probe='printf "%s\n" "$SSH_CONNECTION"'
# shellcheck disable=SC2016
((!transfer)) || probe+='; mktemp -d "${TMPDIR:-/tmp}/zfarm-worker.XXXXXX"'
probe_pids=()
for k in "${!host_dest[@]}"; do
    ssh_args "${host_port[k]}"
    ssh -n "${host_args[@]}" -- "${host_dest[k]}" "$probe" \
        >"$dir/host-$k.probe" 2>"$dir/host-$k.log" &
    probe_pids[k]=$!
    pids+=($!)
done
reachable=() head_of=()
for k in "${!host_dest[@]}"; do
    status=0
    wait "${probe_pids[k]}" || status=$?
    if ((status != 0)); then
        say "${host_label[k]}: cannot be reached (ssh exited $status); left out:"
        tail -n 3 "$dir/host-$k.log" | sed 's/^/    /' >&2
        continue
    fi
    conn='' tmp=''
    { read -r conn && read -r tmp; } <"$dir/host-$k.probe" || true
    tmp_of[k]=$tmp
    addr=${head_addr:-$(head_address "${conn%% *}")} || {
        say "${host_label[k]}: reached this machine from '${conn%% *}', which zfarm cannot listen on (IPv4 only); give --head-addr ADDR; left out"
        continue
    }
    head_of[k]=$addr
    reachable+=("$k")
done

# copy_to DEST FILE DIR: copies FILE into DIR on DEST (reached with
# host_args), through ssh itself (no scp or sftp needed there).
copy_to() {
    local dest=$1 file=$2 target
    target=$(sq "$3/$(basename "$file")")
    ssh "${host_args[@]}" -- "$dest" "cat >$target && chmod 755 $target" <"$file"
}

# 2. With --transfer, copy the worker to each host reached, and the sink and
# the ventilator to the head.
if ((transfer)); then
    copy_pids=()
    for k in "${reachable[@]}"; do
        ssh_args "${host_port[k]}"
        copy_to "${host_dest[k]}" "$bin/zfarm-worker" "${tmp_of[k]}" 2>>"$dir/host-$k.log" &
        copy_pids[k]=$!
        pids+=($!)
    done
    if [[ -n $head ]]; then
        ssh_args "$head_port"
        for p in zfarm-sink zfarm-ventilator; do
            copy_to "$head_dest" "$bin/$p" "$head_tmp" 2>>"$dir/head.log" && continue
            log_tail "$dir/head.log" 3
            say "copying $p to the head $head failed; nothing started (logs in $dir)"
            exit 1
        done
    fi
    copied=()
    for k in "${reachable[@]}"; do
        if wait "${copy_pids[k]}"; then
            copied+=("$k")
            continue
        fi
        say "${host_label[k]}: copying zfarm-worker failed; left out:"
        tail -n 3 "$dir/host-$k.log" | sed 's/^/    /' >&2
    done
    reachable=("${copied[@]}")
fi
((${#reachable[@]})) || {
    say "no host is left to start workers on; nothing started (logs in $dir)"
    exit 1
}

# The ventilator learns how many workers the hosts reached are to start; the
# job goes on with those that connect, as with those that start (below).
expected=0
for k in "${reachable[@]}"; do expected=$((expected + host_workers[k])); done
vent_expect vent_args "$expected" 1

# 3. The sink and the ventilator. Here, each once its ports listen (a bind
# that loses a race for a port is retried on new ones). On the head, each
# in a session of its own, binding port 0; their start-up lines give the
# ports they got. Sets pr, pc (the sink's results and control ports), pt or
# pk (the ventilator's tasks and credit ports: on the head only the one of
# its dispatch), bind, sink_pid, vent_pid, tail_pid.
at() { echo "tcp://$1:$2"; }
lost_port_race() { grep -qi 'address already in use' "$1"; }
vent_log=$dir/ventilator.log

# reap_ventilator MESSAGE: the ventilator did not come up. Still running, it
# never listened: say MESSAGE and exit 1. Otherwise it exited (and said
# why): its status in vent_status, once its log's tail has been shown.
reap_ventilator() {
    if kill -0 "$vent_pid" 2>/dev/null; then
        say "$1; logs in $dir"
        exit 1
    fi
    vent_status=0
    wait "$vent_pid" || vent_status=$?
    wait "$tail_pid" 2>/dev/null || true
}

start_here() {
    local attempt local_addr=$bind
    [[ $bind != 0.0.0.0 ]] || local_addr=127.0.0.1
    for attempt in 1 2 3; do
        pr=$(pick_port) || exit 2
        pc=$(pick_port) || exit 2
        chosen+=("$pr" "$pc")
        "$bin/zfarm-sink" --once -o "$output" --results "$(at "$bind" "$pr")" \
            --control "$(at "$bind" "$pc")" "${sink_extra[@]}" </dev/null >"$dir/sink.out" 2>"$dir/sink.log" &
        sink_pid=$!
        pids+=("$sink_pid")
        wait_listening all "$sink_pid" "$pr" "$pc" && break
        stop_pids "$sink_pid"
        if ((attempt == 3)) || ! lost_port_race "$dir/sink.log"; then
            log_tail "$dir/sink.log"
            say "the sink did not start; logs in $dir"
            exit 1
        fi
    done
    for attempt in 1 2 3; do
        pt=$(pick_port) || exit 2
        pk=$(pick_port) || exit 2
        chosen+=("$pt" "$pk")
        : >"$vent_log"
        "$bin/zfarm-ventilator" --tasks "$(at "$bind" "$pt")" --credit "$(at "$bind" "$pk")" \
            --results "$(at "$local_addr" "$pr")" --control "$(at "$local_addr" "$pc")" \
            "${vent_args[@]}" 0<&0 2>"$vent_log" &
        vent_pid=$!
        pids+=("$vent_pid")
        tail -s 0.1 -n +1 -f --pid="$vent_pid" "$vent_log" >&2 &
        tail_pid=$!
        wait_listening any "$vent_pid" "$pt" "$pk" && break
        reap_ventilator "the ventilator did not start listening"
        if ((attempt == 3)) || ! lost_port_race "$vent_log"; then
            exit "$vent_status" # it said why on stderr
        fi
    done
}

start_on_head() {
    local input=(-n) up
    bind=0.0.0.0
    [[ $head_addr == 127.* || $head_addr == localhost ]] && bind=127.0.0.1
    ssh_args "$head_port"
    ssh -n "${host_args[@]}" -- "$head_dest" "$(remote_command "$run_script" zfarm-sink \
        "$head_tmp" sink "$head_bin/zfarm-sink" --once -o - --results "$(at "$bind" 0)" \
        --control "$(at "$bind" 0)" "${sink_extra[@]}")" >>"$output" 2>"$dir/sink.log" &
    sink_pid=$!
    pids+=("$sink_pid")
    up='sink up: results tcp://[^ ]*:([0-9]+), control tcp://[^ ]*:([0-9]+),'
    if ! up_line "$sink_pid" "$dir/sink.log" "$up"; then
        log_tail "$dir/sink.log"
        say "the sink did not start on the head $head; logs in $dir"
        exit 1
    fi
    pr=${BASH_REMATCH[1]} pc=${BASH_REMATCH[2]}
    # The job's input, when it reads standard input, is ours.
    vent_reads_stdin "${vent_args[@]}" && input=()
    : >"$vent_log"
    ssh "${input[@]}" "${host_args[@]}" -- "$head_dest" "$(remote_command "$run_script" \
        zfarm-ventilator "$head_tmp" ventilator "$head_bin/zfarm-ventilator" \
        --tasks "$(at "$bind" 0)" --credit "$(at "$bind" 0)" --results "$(at 127.0.0.1 "$pr")" \
        --control "$(at 127.0.0.1 "$pc")" "${vent_args[@]}")" 0<&0 2>"$vent_log" &
    vent_pid=$!
    pids+=("$vent_pid")
    tail -s 0.1 -n +1 -f --pid="$vent_pid" "$vent_log" >&2 &
    tail_pid=$!
    up='ventilator up: job .*, (push|credit) dispatch on tcp://[^ ]*:([0-9]+), sink '
    if ! up_line "$vent_pid" "$vent_log" "$up"; then
        reap_ventilator "the ventilator did not start on the head $head"
        exit "$vent_status" # it said why on stderr
    fi
    pt='' pk=''
    if [[ ${BASH_REMATCH[1]} == push ]]; then pt=${BASH_REMATCH[2]}; else pk=${BASH_REMATCH[2]}; fi
}

if [[ -n $head ]]; then
    start_on_head
else
    bind=$(bind_address "$head_addr" "${head_of[@]}")
    start_here
fi
say "head${head:+ $head} ports: results $pr, control $pc${pt:+, tasks $pt}${pk:+, credit $pk}" \
    "(bound on $bind${head:+ there})"

# 4. The workers: one ssh session per host line, running its N workers under
# worker_script (lib/remote.sh). Its standard input is a fifo (host-K.in)
# held open by a tail that lives as long as this script: ending that tail, or
# this script dying, ends the session and so the workers.
first=1
for k in "${reachable[@]}"; do
    ssh_args "${host_port[k]}"
    rbin=$remote_bin clean=''
    ((!transfer)) || rbin=${tmp_of[k]} clean=${tmp_of[k]}
    addr=${head_of[k]}
    [[ $addr == *:* ]] && addr="[$addr]"
    remote=("${host_workers[k]}" "${host_name[k]}" "$first" "$clean" "$rbin"
        --exit-when-done --threads "$threads" --results "$(at "$addr" "$pr")"
        --control "$(at "$addr" "$pc")")
    [[ -z $pt ]] || remote+=(--tasks "$(at "$addr" "$pt")")
    [[ -z $pk ]] || remote+=(--credit "$(at "$addr" "$pk")")
    remote+=("${worker_extra[@]}")
    fifo=$dir/host-$k.in
    rm -f "$fifo"
    mkfifo "$fifo"
    ssh "${host_args[@]}" -- "${host_dest[k]}" \
        "$(remote_command "$worker_script" zfarm-workers "${remote[@]}")" \
        <"$fifo" >"$dir/host-$k.events" 2>>"$dir/host-$k.log" &
    session_pids[k]=$!
    pids+=($!)
    holder "$fifo"
    holder_pids[k]=$holder_pid
    first=$((first + host_workers[k]))
done

# started K, exited K: the workers host line K's session has started, and
# those that have exited (with status 0 when FAILED is not given).
count_events() {
    local c
    c=$(grep -c "^$1 " "$dir/host-$2.events" 2>/dev/null || true)
    echo "${c:-0}"
}
started() { count_events started "$1"; }
exited() { count_events exited "$1"; }
failed_ids() { awk '$1 == "exited" && $3 != 0 { print $2 " " $3 }' "$dir/host-$1.events" 2>/dev/null; }

# Start-up: give the sessions 3 s to start their workers (a session whose
# ssh has ended is done sooner), then report what did not start.
for ((i = 0; i < 30; i++)); do
    waiting=0
    for k in "${reachable[@]}"; do
        kill -0 "${session_pids[k]}" 2>/dev/null || continue
        (($(started "$k") == host_workers[k])) && continue
        waiting=1
    done
    ((waiting || i < 10)) || break
    sleep 0.1
done
running=0 hosts_up=0 summary=()
declare -A reported=()
for k in "${reachable[@]}"; do
    # Started and not failed: still running, or done (a short job can end
    # before the start-up check does). A session that has ended only vouches
    # for those it saw exit 0.
    failed=$(failed_ids "$k" | wc -l)
    up=$(($(started "$k") - failed))
    if ! kill -0 "${session_pids[k]}" 2>/dev/null; then
        up=$(($(exited "$k") - failed))
    fi
    if ((up < host_workers[k])); then
        say "${host_label[k]}: $up of ${host_workers[k]} worker(s) started:"
        while read -r id st; do
            say "  worker $id exited with status $st"
            reported[$id]=1
        done < <(failed_ids "$k")
        tail -n 5 "$dir/host-$k.log" | sed 's/^/    /' >&2
    fi
    running=$((running + up))
    ((up == 0)) || hosts_up=$((hosts_up + 1)) summary+=("${host_label[k]} $up")
done
if ((running == 0)); then
    say "no worker could start; stopping (logs in $dir)"
    exit 1
fi
list=$(printf ', %s' "${summary[@]}")
say "$running worker(s) on $hosts_up host line(s) (${list#, }); logs in $dir (sink.log, ventilator.log, host-K.log); results in $output"

# Wait for the ventilator, watching the others: the sink must not leave
# before it, and some worker must be left while it runs. A worker that fails
# is reported; the others take its tasks.
failed_part=''
deadline=$((SECONDS + timeout))
while kill -0 "$vent_pid" 2>/dev/null; do
    if ((timeout > 0 && SECONDS >= deadline)); then
        say "the job was still running after $timeout s (--timeout)"
        failed_part=timeout
        break
    fi
    if ! kill -0 "$sink_pid" 2>/dev/null; then
        say "the sink exited before the job finished; stopping everything"
        log_tail "$dir/sink.log"
        failed_part=sink
        break
    fi
    open=0
    for k in "${reachable[@]}"; do
        kill -0 "${session_pids[k]}" 2>/dev/null && open=1
        while read -r id st; do
            [[ -n ${reported[$id]:-} ]] && continue
            reported[$id]=1
            say "worker $id (${host_label[k]}) exited with status $st"
            log_tail "$dir/host-$k.log" 5
        done < <(failed_ids "$k")
    done
    if ((!open)); then
        say "every worker has exited before the job finished; stopping everything"
        failed_part=workers
        break
    fi
    sleep 0.1
done
[[ -z $failed_part ]] || exit 1
vent_status=0
wait "$vent_pid" || vent_status=$?
if [[ -n $head ]] && ((vent_status == 255)); then
    # ssh's own failure, not the ventilator's status (0, 1 or 2).
    say "lost the connection to the head $head; the job's state there is unknown"
    vent_status=1
fi
wait "$tail_pid" 2>/dev/null || true # the rest of its log, before we print more

# The sink (--once) and the workers (--exit-when-done) leave on their own once
# the job is done; give them 5 s, then stop_all (EXIT) stops the rest.
for ((i = 0; i < 50; i++)); do
    running=0
    for pid in "$sink_pid" "${session_pids[@]}"; do
        kill -0 "$pid" 2>/dev/null && running=1
    done
    ((running)) || break
    sleep 0.1
done
exit "$vent_status"
