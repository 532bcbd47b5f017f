#!/usr/bin/env bash
# Runs one zfarm job over a list of machines: the sink and the ventilator on
# this one, the workers started over ssh on the hosts of a hosts file (GNU
# parallel's --sshloginfile, in spirit). Hosts that cannot be reached are
# reported and left out; every remote worker is stopped when the script
# exits, however it exits.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: scripts/ssh-launch.sh --hosts FILE [OPTIONS] [VENTILATOR_ARGS...] [-- CMD ARG...]

Starts zfarm-sink (--once) and zfarm-ventilator on this machine (the head)
on free ports, then zfarm-worker (--exit-when-done) on every host of FILE
over ssh, connecting back to the head, and waits for the job. The
ventilator reads this script's standard input and prints its summary here;
the sink, and the workers of each host line, log to files in the log
directory, whose place is printed.

  scripts/ssh-launch.sh --hosts hosts.txt --dispatch credit --demo 1000
  ls *.fastq | scripts/ssh-launch.sh --hosts hosts.txt --transfer --allow-exec \
      --dispatch credit -- gzip -k {}

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
  --remote-bin DIR  where zfarm-worker is on the hosts (default: this build's
                    bin directory, the same path: a shared file system)
  --transfer        copy this build's zfarm-worker (over ssh) to a new temporary
                    directory on each host first, and remove it afterwards
                    (the hosts need the same system libraries: libzmq5,
                    libsodium, libstdc++ as on this machine)
  --head-addr ADDR  the address the workers connect to (default: the one
                    each host's sshd saw this machine connect from,
                    $SSH_CONNECTION there). The sink and the ventilator bind
                    ADDR when it is an IPv4 address of this machine, and all
                    addresses (0.0.0.0) otherwise; without --head-addr they
                    bind 127.0.0.1 when every host reached this machine over
                    loopback, all addresses otherwise.
  --head HOST       not supported yet: run this script on the head instead
                    (ssh HOST scripts/ssh-launch.sh ...)
  -o FILE           the sink's results file (default: results.jsonl in the
                    log directory)
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

Start-up: a host that cannot be reached (ssh fails: which host, and the end
of ssh's error), or whose workers exit with an error within their first
seconds, is reported with the end of its log, and the job goes on with the
others; when no worker could start at all the script exits 1. Each host
line's ssh session runs its workers under a small sh script there, which
stops them (SIGTERM, again 3 s later, SIGKILL 2 s after that) as soon as the
session ends: at the end of the job, on Ctrl-C, on an error, and also when
the ssh client or this script is killed, or the connection is lost.

Exit status: the ventilator's (0 all tasks ok, 1 some failed, 2 bad usage),
or 1 when no worker could start, the sink failed, every worker exited before
the job ended, or --timeout passed; 130/143 when interrupted.
Environment: ZFARM_BUILD_DIR (default build), TMPDIR.
EOF
}

die() {
    printf 'ssh-launch.sh: %s\n' "$*" >&2
    exit 2
}
say() { printf 'ssh-launch.sh: %s\n' "$*" >&2; }

hosts_file='' threads=1 timeout=0 dir='' output='' remote_bin='' transfer=0 head_addr=''
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
    --head | --head=*)
        die "--head is not supported yet: run this script on the head itself (ssh HEAD scripts/ssh-launch.sh ...)"
        ;;
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
# ssh_args K: the options that reach host line K (its port too).
ssh_args() {
    local k=$1
    host_args=("${ssh_opts[@]}")
    [[ -z ${host_port[k]} ]] || host_args+=(-o "Port=${host_port[k]}")
}

# Every local process started here (pids, from pipeline.sh); the remote
# sessions (ssh clients) and what holds their standard input open.
session_pids=() holder_pids=() tmp_of=()
# shellcheck disable=SC2317 # run by the EXIT trap
stop_all() {
    # The ventilator first (it cancels its job), then the remote workers: each
    # session's stdin closes, its script stops the workers and ends; a
    # session still open after the remote grace (3 + 2 s) is cut.
    [[ -z ${vent_pid:-} ]] || stop_pids "$vent_pid"
    if ((${#holder_pids[@]})); then
        kill -TERM "${holder_pids[@]}" 2>/dev/null || true
        local i pid
        for ((i = 0; i < 80; i++)); do
            for pid in "${session_pids[@]}"; do
                kill -0 "$pid" 2>/dev/null && break
                pid=
            done
            [[ -z $pid ]] && break
            sleep 0.1
        done
    fi
    ((${#pids[@]} == 0)) || stop_pids "${pids[@]}"
    rm -f "$dir"/host-*.in
    # A --transfer copy whose session never started (the script stopped
    # before) is removed here; a session removes its own.
    local k
    for k in "${!tmp_of[@]}"; do
        [[ -n ${session_pids[k]:-} || -z ${tmp_of[k]} ]] && continue
        ssh_args "$k"
        ssh -n "${host_args[@]}" -- "${host_dest[k]}" "rm -rf $(sq "${tmp_of[k]}")" 2>/dev/null || true
    done
}
trap stop_all EXIT
trap 'say "interrupted; logs in $dir"; exit 130' INT
trap 'exit 143' TERM HUP

# 1. Reach every host at once: where it sees this machine from (the head
# address its workers use), and with --transfer a temporary directory there.
# shellcheck disable=SC2016 # expanded there
probe='printf "%s\n" "$SSH_CONNECTION"'
# shellcheck disable=SC2016
((!transfer)) || probe+='; mktemp -d "${TMPDIR:-/tmp}/zfarm-worker.XXXXXX"'
probe_pids=()
for k in "${!host_dest[@]}"; do
    ssh_args "$k"
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

# 2. With --transfer, copy the worker to each host reached, through ssh
# itself (no scp or sftp needed there).
if ((transfer)); then
    copy_pids=()
    for k in "${reachable[@]}"; do
        ssh_args "$k"
        target=$(sq "${tmp_of[k]}/zfarm-worker")
        ssh "${host_args[@]}" -- "${host_dest[k]}" "cat >$target && chmod 755 $target" \
            <"$bin/zfarm-worker" 2>>"$dir/host-$k.log" &
        copy_pids[k]=$!
        pids+=($!)
    done
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

# 3. The sink and the ventilator, each once its ports listen (a bind that
# loses a race for a port is retried on new ones).
bind=$(bind_address "$head_addr" "${head_of[@]}")
local_addr=$bind
[[ $bind != 0.0.0.0 ]] || local_addr=127.0.0.1
at() { echo "tcp://$1:$2"; }
lost_port_race() { grep -qi 'address already in use' "$1"; }
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
vent_log=$dir/ventilator.log
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
    if kill -0 "$vent_pid" 2>/dev/null; then
        say "the ventilator did not start listening; logs in $dir"
        exit 1
    fi
    status=0
    wait "$vent_pid" || status=$?
    wait "$tail_pid" 2>/dev/null || true
    if ((attempt == 3)) || ! lost_port_race "$vent_log"; then
        exit "$status" # it said why on stderr
    fi
done
say "head ports: results $pr, control $pc, tasks $pt, credit $pk (bound on $bind)"

# 4. The workers: one ssh session per host line, running its N workers under
# worker_script (lib/remote.sh). Its standard input is a fifo (host-K.in)
# held open by a tail that lives as long as this script: ending that tail, or
# this script dying, ends the session and so the workers.
first=1
for k in "${reachable[@]}"; do
    ssh_args "$k"
    rbin=$remote_bin clean=''
    ((!transfer)) || rbin=${tmp_of[k]} clean=${tmp_of[k]}
    addr=${head_of[k]}
    [[ $addr == *:* ]] && addr="[$addr]"
    remote=("${host_workers[k]}" "${host_name[k]}" "$first" "$clean" "$rbin"
        --exit-when-done --threads "$threads" --tasks "$(at "$addr" "$pt")"
        --credit "$(at "$addr" "$pk")" --results "$(at "$addr" "$pr")"
        --control "$(at "$addr" "$pc")" "${worker_extra[@]}")
    fifo=$dir/host-$k.in
    rm -f "$fifo"
    mkfifo "$fifo"
    ssh "${host_args[@]}" -- "${host_dest[k]}" "$(remote_command "${remote[@]}")" \
        <"$fifo" >"$dir/host-$k.events" 2>>"$dir/host-$k.log" &
    session_pids[k]=$!
    pids+=($!)
    tail -s 1 -f --pid=$$ /dev/null >"$fifo" &
    holder_pids[k]=$!
    pids+=($!)
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
