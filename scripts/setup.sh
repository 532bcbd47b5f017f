#!/usr/bin/env bash
# Installs zfarm's build dependencies (Debian/Ubuntu packages) if any are
# missing, then configures and builds the project. Idempotent, and silent
# about packages when everything is already installed.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: scripts/setup.sh [--deps-only | --no-deps] [--test-deps] [-h|--help]

Installs the Debian packages zfarm needs (only those missing; apt-get runs
only then, through sudo when not root), then configures and builds the
project with CMake. Works from any directory.

Options:
  --deps-only   install missing packages, do not configure or build
  --no-deps     skip the package check; configure and build only
  --test-deps   also what the test suite runs against (GNU parallel, clang,
                tmux, an sshd, Slurm and munge, Chromium, ...): test.sh
                passes it; building and running zfarm do not need them
  -h, --help    show this help

Environment:
  ZFARM_BUILD_DIR    build directory, relative to the repo root (default: build)
  ZFARM_BUILD_TYPE   CMAKE_BUILD_TYPE (default: RelWithDebInfo)
  ZFARM_SANITIZER    passed as -DZFARM_SANITIZER (e.g. address,undefined);
                     unset leaves the build directory's cached value
  ZFARM_WERROR       ON/1/true: -DZFARM_WERROR=ON; OFF/0/false: OFF;
                     unset leaves the cached value (default OFF)
  ZFARM_CCACHE       0 to compile without ccache (used by default when
                     installed; objects are shared between clones)

Binaries land in $ZFARM_BUILD_DIR/bin: zfarm-sink, zfarm-worker, zfarm-ventilator.
EOF
}

# What building zfarm (its tests and benchmarks included) and running it
# use. git: test.sh lists the sources to format-check; iproute2 (ss): demo.sh
# looks for free ports; ccache: rebuilds, and fresh clones on the same
# machine, reuse objects. libnetfilter-queue-dev: the tests' NFQUEUE link
# impairer, for kernels without netem. libbenchmark-dev: the
# micro-benchmarks. libcpp-httplib-dev: the sink's --http status endpoint.
readonly packages=(
    cmake g++ make pkg-config git iproute2 ccache libnetfilter-queue-dev
    libzmq3-dev cppzmq-dev libmsgpack-cxx-dev libcli11-dev nlohmann-json3-dev libspdlog-dev
    libgtest-dev libgmock-dev libbenchmark-dev libcpp-httplib-dev
)
# What the tests run against (--test-deps; not for a demo: slurmd and sshd
# are daemons a laptop should not get for a demo). iptables (and iproute2's
# ip netns, tc): the partition and degraded-link tests. parallel: the
# command-job tests and benchmark compare against GNU parallel. clang: the
# libFuzzer targets (scripts/fuzz.sh). time: CPU figures of the benchmarks.
# python3-zmq, python3-msgpack: the Python worker (examples/python/worker.py)
# and its end-to-end test. clang-format, shellcheck: test.sh's first stages.
# tmux: scripts/tmux.sh and its test; openssh-client: scripts/ssh-launch.sh;
# openssh-server: the sshd its test starts on a loopback port. slurm-wlm
# (slurmctld, slurmd, slurm-client) and munge: the Slurm test runs
# scripts/slurm/zfarm.sbatch on a three-node cluster of its own
# (tests/support/slurm-cluster.sh). chromium: the headless browser the
# dashboard's test loads the page in.
readonly test_packages=(
    iptables python3 python3-zmq python3-msgpack clang-format shellcheck
    parallel clang time
    tmux openssh-client openssh-server
    slurm-wlm slurmctld slurmd slurm-client munge
    chromium
)
wanted=("${packages[@]}")

die() {
    printf 'setup.sh: %s\n' "$*" >&2
    exit 2
}

install_deps() {
    if ! command -v dpkg-query >/dev/null 2>&1; then
        printf 'setup.sh: no dpkg-query (not Debian/Ubuntu?); assuming these are installed: %s\n' \
            "${wanted[*]}" >&2
        return 0
    fi
    local missing=() pkg status
    for pkg in "${wanted[@]}"; do
        status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
        [[ $status == ii* ]] || missing+=("$pkg")
    done
    ((${#missing[@]} == 0)) && return 0

    printf 'setup.sh: installing %s\n' "${missing[*]}" >&2
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install these by hand: ${missing[*]}"
    local sudo=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null 2>&1 || die "not root and no sudo; as root run: apt-get install ${missing[*]}"
        sudo=(sudo)
    fi
    # Wait for another apt/dpkg run to finish instead of failing on its lock.
    local apt_opts=(-o DPkg::Lock::Timeout=600 -q)
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" update
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get "${apt_opts[@]}" install -y --no-install-recommends "${missing[@]}"
}

cmake_bool() {
    case "${1,,}" in
    on | 1 | true | yes) echo ON ;;
    off | 0 | false | no | '') echo OFF ;;
    *) die "ZFARM_WERROR must be ON or OFF, not '$1'" ;;
    esac
}

build() {
    local build_dir=${ZFARM_BUILD_DIR:-build}
    local args=(-S . -B "$build_dir" -DCMAKE_BUILD_TYPE="${ZFARM_BUILD_TYPE:-RelWithDebInfo}")
    [[ -v ZFARM_SANITIZER ]] && args+=(-DZFARM_SANITIZER="$ZFARM_SANITIZER")
    [[ -v ZFARM_WERROR ]] && args+=(-DZFARM_WERROR="$(cmake_bool "$ZFARM_WERROR")")
    if [[ ${ZFARM_CCACHE:-1} != 0 ]] && command -v ccache >/dev/null 2>&1; then
        args+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
        # Paths under the repo root are hashed relative to it, and the build
        # directory is left out, so another clone of the same sources hits.
        export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD} CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-1}
    else
        args+=(-DCMAKE_CXX_COMPILER_LAUNCHER=)
    fi
    cmake "${args[@]}"
    cmake --build "$build_dir" -j"$(nproc)"
}

mode=all
while (($#)); do
    case "$1" in
    --deps-only) mode=deps ;;
    --no-deps) mode=build ;;
    --test-deps) wanted+=("${test_packages[@]}") ;;
    -h | --help)
        usage
        exit 0
        ;;
    *) die "unknown argument: $1 (see --help)"
        ;;
    esac
    shift
done

cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."

[[ $mode == build ]] || install_deps
[[ $mode == deps ]] || build
