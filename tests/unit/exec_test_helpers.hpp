// Helpers for the exec kind's unit tests (exec_kind_test.cpp,
// exec_kind_kill_test.cpp): payloads, calling the handler, reading its
// outcome map, and bounded waits on files and processes.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "exec_kind.hpp"
#include "zfarm/exec_format.hpp"

namespace zfarm::unit {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
using zfarm::handler_result;
using zfarm::task_view;
using zfarm::detail::exec_kind;
using zfarm::exec::outcome;

inline constexpr std::uint64_t k_mib = 1024 * 1024;

inline std::string payload(std::vector<std::string> argv,
                           std::vector<std::pair<std::string, std::string>> env = {},
                           std::string dir = {}) {
    return zfarm::exec::encode(
        zfarm::exec::command{std::move(argv), std::move(env), std::move(dir)});
}

inline handler_result run(exec_kind& k, const std::string& p,
                          clock_type::time_point deadline = clock_type::time_point::max(),
                          const std::atomic<bool>* cancel = nullptr) {
    return k(task_view("unit", 1, 1, "exec", p, cancel, deadline));
}

// The outcome map of an ok or failed result; fails the test when there is none.
inline outcome outcome_of(const handler_result& r) {
    const std::string& bytes = r ? *r : r.error().output;
    auto o = zfarm::exec::decode_outcome(bytes);
    if (!o) {
        ADD_FAILURE() << "no outcome map: " << o.error();
        return {};
    }
    return *o;
}

inline std::string reason_of(const handler_result& r) {
    return r ? std::string("(ok)") : r.error().reason;
}

inline std::string host() {
    char buf[256] = {};
    ::gethostname(buf, sizeof buf - 1);
    return buf;
}

// The file's content once it ends with a newline (a shell's `echo` done), or
// "" after `limit`.
inline std::string wait_for_line(const std::string& path, clock_type::duration limit = 10s) {
    const auto end = clock_type::now() + limit;
    while (clock_type::now() < end) {
        std::ifstream in(path);
        std::stringstream ss;
        ss << in.rdbuf();
        const std::string s = ss.str();
        if (!s.empty() && s.back() == '\n') return s;
        std::this_thread::sleep_for(10ms);
    }
    return {};
}

// Gone: no such process, or a zombie nobody has reaped yet (this machine's
// init may not reap orphans).
inline bool process_gone(pid_t pid) {
    if (::kill(pid, 0) != 0) return errno == ESRCH;
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    std::getline(in, line);
    const auto paren = line.rfind(')');
    if (paren == std::string::npos || paren + 2 >= line.size()) return true;
    return line[paren + 2] == 'Z' || line[paren + 2] == 'X';
}

inline bool wait_until_gone(pid_t pid, clock_type::duration limit = 10s) {
    const auto end = clock_type::now() + limit;
    while (!process_gone(pid)) {
        if (clock_type::now() >= end) return false;
        std::this_thread::sleep_for(10ms);
    }
    return true;
}

inline double seconds_since(clock_type::time_point t) {
    return std::chrono::duration<double>(clock_type::now() - t).count();
}

}  // namespace zfarm::unit
