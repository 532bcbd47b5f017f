# shellcheck shell=bash
# Free localhost ports and waiting for them to listen, for the scripts that
# start zfarm's programs themselves (demo.sh, bench-faults.sh). Sourced;
# the caller defines die().

# A port is free when no TCP socket, listening or connected, uses it.
have_ss=0
command -v ss >/dev/null 2>&1 && have_ss=1
port_in_use() {
    if ((have_ss)); then
        [[ -n $(ss -Htan "sport = :$1") ]]
    else
        (: <>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
    fi
}
listening() {
    if ((have_ss)); then
        [[ -n $(ss -Hltn "sport = :$1") ]]
    else
        (: <>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
    fi
}

# Ports handed out so far (the caller appends what it takes, and may reset).
chosen=()
pick_port() { # prints a free port in 20000-60000 not in chosen
    local p i
    for ((i = 0; i < 500; i++)); do
        p=$((20000 + ((RANDOM << 15) | RANDOM) % 40001))
        [[ " ${chosen[*]} " == *" $p "* ]] && continue
        port_in_use "$p" && continue
        echo "$p"
        return 0
    done
    die "no free TCP port found in 20000-60000"
}

# wait_listening all|any PID PORT...: true once all (or any) of PORTS
# listen; false if PID exited first or 10 s passed.
wait_listening() {
    local mode=$1 pid=$2 i port up
    shift 2
    for ((i = 0; i < 200; i++)); do
        up=0
        for port in "$@"; do
            listening "$port" && up=$((up + 1))
        done
        [[ $mode == any ]] && ((up > 0)) && return 0
        ((up == $#)) && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

ep() { echo "tcp://127.0.0.1:$1"; }
