#include "recovery.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <unordered_set>

#include <nlohmann/json.hpp>

namespace zfarm::sink {
namespace {

struct restored_line {
    std::string job;
    std::uint64_t id = 0;
    bool ok = true;
    std::string worker;
};

expected<restored_line, std::string> parse_line(const std::string& line) {
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return unexpected{std::string("not JSON")};
    if (!j.is_object()) return unexpected{std::string("not a JSON object")};
    restored_line r;
    const auto job = j.find("job");
    if (job == j.end() || !job->is_string()) return unexpected{std::string("no \"job\" string")};
    r.job = job->get<std::string>();
    if (r.job.size() > proto::k_max_name)
        return unexpected{std::string("\"job\" is longer than 256 bytes")};
    const auto id = j.find("id");
    if (id == j.end() || !id->is_number_unsigned())
        return unexpected{std::string("no \"id\" unsigned integer")};
    r.id = id->get<std::uint64_t>();
    const auto status = j.find("status");
    if (status == j.end() || !status->is_string() || (*status != "ok" && *status != "failed"))
        return unexpected{std::string("no \"status\" of \"ok\" or \"failed\"")};
    r.ok = *status == "ok";
    if (const auto w = j.find("worker"); w != j.end() && w->is_string())
        r.worker = w->get<std::string>();
    return r;
}

}  // namespace

expected<recovery_report, std::string> recover(const std::string& path, job_table& jobs) {
    recovery_report report;
    std::error_code ec;
    if (!std::filesystem::exists(path, ec) && !ec) {
        report.file_missing = true;
        return report;
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) return unexpected{"cannot read " + path + ": " + std::strerror(errno)};
    std::unordered_set<std::string> names;
    std::uint64_t whole = 0;  // bytes of whole lines so far
    std::uint64_t line_no = 0;
    std::string line;
    while (std::getline(in, line)) {
        ++line_no;
        if (in.eof()) {  // no newline after it: torn by a crash mid-write
            report.torn_bytes = line.size();
            break;
        }
        whole += line.size() + 1;
        if (line.empty()) continue;
        auto r = parse_line(line);
        if (!r)
            return unexpected{path + ":" + std::to_string(line_no) +
                              ": not a zfarm result line: " + r.error()};
        switch (jobs.restore(r->job, r->id, r->ok, r->worker)) {
            case job_table::record_outcome::added:
                ++report.results;
                names.insert(r->job);
                break;
            case job_table::record_outcome::duplicate:
                ++report.duplicates;
                break;
            case job_table::record_outcome::retry:  // restore() records every line
                break;
            case job_table::record_outcome::rejected:
                return unexpected{path + ":" + std::to_string(line_no) + ": id " +
                                  std::to_string(r->id) + " of job " + r->job +
                                  " is too far above the ids recorded before it"};
        }
    }
    if (in.bad()) return unexpected{"cannot read " + path + ": " + std::strerror(errno)};
    in.close();
    if (report.torn_bytes > 0 && ::truncate(path.c_str(), static_cast<off_t>(whole)) != 0)
        return unexpected{"cannot cut the torn last line of " + path + ": " + std::strerror(errno)};
    report.jobs = names.size();
    return report;
}

}  // namespace zfarm::sink
