#include "support/pipeline.hpp"

#include <fstream>

#include <algorithm>
#include <iostream>

namespace zfarm::test {

pipeline::pipeline(std::string dispatch, std::string host)
    : dispatch_(std::move(dispatch)), host_(std::move(host)) {
    ports_.tasks = free_tcp_port();
    ports_.credit = free_tcp_port();
    ports_.results = free_tcp_port();
    ports_.control = free_tcp_port();
}

pipeline::~pipeline() {
    if (!::testing::Test::HasFailure()) return;
    for (auto& p : programs_) {
        const bool alive = p.running();
        std::cout << "---- " << p.name() << " (" << (alive ? "still running" : "exited")
                  << "), last lines of stderr:\n"
                  << last_lines(p.stderr_text(), 30) << "\n";
        if (auto out = p.stdout_text(); !out.empty())
            std::cout << "---- " << p.name() << " stdout:\n" << last_lines(out, 10) << "\n";
    }
}

std::string pipeline::endpoint(std::uint16_t port) const {
    return "tcp://" + host_ + ":" + std::to_string(port);
}

std::vector<std::string> pipeline::all_endpoints() const {
    return {"--tasks",   endpoint(ports_.tasks),   "--credit",  endpoint(ports_.credit),
            "--results", endpoint(ports_.results), "--control", endpoint(ports_.control)};
}

child_process& pipeline::start_sink(const std::vector<std::string>& extra) {
    std::vector<std::string> args{"--results", endpoint(ports_.results),
                                  "--control", endpoint(ports_.control),
                                  "-o",        output().string()};
    args.insert(args.end(), extra.begin(), extra.end());
    const std::string name =
        sink_ ? "sink-" + std::to_string(programs_.size()) : std::string("sink");
    sink_ = &programs_.emplace_back("zfarm-sink", args, dir_.path(), name);
    return *sink_;
}

child_process& pipeline::start_worker(const std::vector<std::string>& extra,
                                      const std::string& program) {
    std::vector<std::string> args = all_endpoints();
    args.insert(args.end(), extra.begin(), extra.end());
    const std::string name = "worker-" + std::to_string(workers_.size() + 1);
    workers_.push_back(&programs_.emplace_back(program, args, dir_.path(), name));
    return *workers_.back();
}

child_process& pipeline::start_external_worker(const std::vector<std::string>& command,
                                               const std::vector<std::string>& extra) {
    std::vector<std::string> args(command.begin() + 1, command.end());
    const auto endpoints = all_endpoints();
    args.insert(args.end(), endpoints.begin(), endpoints.end());
    args.insert(args.end(), extra.begin(), extra.end());
    const std::string name = "worker-" + std::to_string(workers_.size() + 1);
    workers_.push_back(&programs_.emplace_back(command.at(0), args, dir_.path(), name));
    return *workers_.back();
}

child_process& pipeline::start_worker_under(const std::vector<std::string>& prefix,
                                            const std::vector<std::string>& extra) {
    if (prefix.empty()) return start_worker(extra);
    std::vector<std::string> args(prefix.begin() + 1, prefix.end());
    args.push_back((bin_dir() / "zfarm-worker").string());
    const auto endpoints = all_endpoints();
    args.insert(args.end(), endpoints.begin(), endpoints.end());
    args.insert(args.end(), extra.begin(), extra.end());
    const std::string name = "worker-" + std::to_string(workers_.size() + 1);
    workers_.push_back(&programs_.emplace_back(prefix[0], args, dir_.path(), name));
    return *workers_.back();
}

child_process& pipeline::start_ventilator(const std::vector<std::string>& extra) {
    std::vector<std::string> args = all_endpoints();
    args.insert(args.end(), {"--dispatch", dispatch_});
    args.insert(args.end(), extra.begin(), extra.end());
    const std::string name =
        ventilator_ ? "ventilator-" + std::to_string(programs_.size()) : std::string("ventilator");
    ventilator_ = &programs_.emplace_back("zfarm-ventilator", args, dir_.path(), name);
    return *ventilator_;
}

void pipeline::start(int workers, const std::vector<std::string>& workload,
                     const std::string& job) {
    start_sink({"--once"});
    for (int i = 0; i < workers; ++i)
        start_worker({"--exit-when-done"});
    std::vector<std::string> args = workload;
    args.insert(args.end(), {"--job", job});
    start_ventilator(args);
}

std::vector<nlohmann::json> read_results(const std::filesystem::path& path) {
    std::vector<nlohmann::json> out;
    std::size_t line_no = 0;
    for (const auto& line : read_lines(path)) {
        ++line_no;
        auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
        if (j.is_discarded() || !j.is_object()) {
            ADD_FAILURE() << path.string() << ":" << line_no << " is not a JSON object: " << line;
            continue;
        }
        out.push_back(std::move(j));
    }
    return out;
}

::testing::AssertionResult has_each_id_once(const std::vector<nlohmann::json>& results,
                                            std::uint64_t n) {
    std::vector<unsigned> seen(n, 0);
    std::vector<std::string> problems;
    for (const auto& r : results) {
        auto id = r.find("id");
        if (id == r.end() || !id->is_number_unsigned()) {
            problems.push_back("a result without an unsigned id: " + r.dump());
        } else if (id->get<std::uint64_t>() >= n) {
            problems.push_back("id out of range: " + r.dump());
        } else if (++seen[id->get<std::uint64_t>()] == 2) {
            problems.push_back("id recorded twice: " + std::to_string(id->get<std::uint64_t>()));
        }
    }
    std::uint64_t missing = 0;
    std::uint64_t first_missing = 0;
    for (std::uint64_t i = 0; i < n; ++i)
        if (seen[i] == 0 && missing++ == 0) first_missing = i;
    if (missing > 0)
        problems.push_back(std::to_string(missing) + " id(s) missing, the first is " +
                           std::to_string(first_missing));
    if (problems.empty()) return ::testing::AssertionSuccess();
    auto failure = ::testing::AssertionFailure();
    failure << results.size() << " result(s) for ids 0.." << n - 1 << ":";
    for (std::size_t i = 0; i < problems.size() && i < 10; ++i)
        failure << "\n  " << problems[i];
    if (problems.size() > 10) failure << "\n  ... and " << problems.size() - 10 << " more";
    return failure;
}

::testing::AssertionResult all_ok_first_attempt(const std::vector<nlohmann::json>& results) {
    for (const auto& r : results) {
        if (r.value("status", "") != "ok" || r.value("attempts", 0u) != 1u)
            return ::testing::AssertionFailure() << "not ok at the first attempt: " << r.dump();
    }
    return ::testing::AssertionSuccess();
}

std::set<std::string> workers_of(const std::vector<nlohmann::json>& results) {
    std::set<std::string> out;
    for (const auto& r : results)
        out.insert(r.value("worker", ""));
    return out;
}

::testing::AssertionResult is_summary_line(const std::string& out, const std::string& job,
                                           std::uint64_t total, std::uint64_t ok,
                                           std::uint64_t failed, std::size_t workers) {
    const std::string expected = "job " + job + ": " + std::to_string(total) + " tasks, " +
                                 std::to_string(ok) + " ok, " + std::to_string(failed) +
                                 " failed, " + std::to_string(workers) + " workers, ";
    // The rest is the elapsed time, "N.NNN s\n".
    const std::string rest = out.rfind(expected, 0) == 0 ? out.substr(expected.size()) : "";
    const auto dot = rest.find('.');
    const auto digits = [&](std::size_t from, std::size_t to) {
        return std::all_of(rest.begin() + static_cast<long>(from),
                           rest.begin() + static_cast<long>(to),
                           [](char ch) { return ch >= '0' && ch <= '9'; });
    };
    if (dot != std::string::npos && dot > 0 && rest.size() == dot + 7 && digits(0, dot) &&
        digits(dot + 1, dot + 4) && rest.compare(dot + 4, 3, " s\n") == 0)
        return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << "stdout is \"" << out << "\", expected \"" << expected << "N.NNN s\\n\"";
}

std::map<std::uint64_t, nlohmann::json> read_results_by_id(const std::filesystem::path& path) {
    std::map<std::uint64_t, nlohmann::json> out;
    for (auto& r : read_results(path)) {
        const auto id = r.value("id", std::uint64_t{0});  // before r is moved from
        out[id] = std::move(r);
    }
    return out;
}

std::string write_lines(const std::filesystem::path& path, const std::vector<std::string>& lines) {
    std::ofstream out(path);
    for (const auto& l : lines)
        out << l << '\n';
    return path.string();
}

}  // namespace zfarm::test
