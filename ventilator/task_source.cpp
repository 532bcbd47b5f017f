#include "task_source.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iostream>

#include <nlohmann/json.hpp>

#include "zfarm/protocol.hpp"

namespace zfarm::ventilator {
namespace {

class fixed_source final : public task_source {
  public:
    fixed_source(std::uint64_t n, std::string kind, std::string payload)
        : n_(n), left_(n), spec_{std::move(kind), std::move(payload)} {}
    expected<std::optional<task_spec>, std::string> next() override {
        if (left_ == 0) return std::optional<task_spec>{};
        --left_;
        return std::optional<task_spec>{spec_};
    }
    expected<bool, std::string> next_into(task_spec& out) override {
        if (left_ == 0) return false;
        --left_;
        out.kind = spec_.kind;
        out.payload = spec_.payload;
        return true;
    }
    std::optional<std::uint64_t> size() const override { return n_; }

  private:
    std::uint64_t n_;
    std::uint64_t left_;
    task_spec spec_;
};

class demo_source final : public task_source {
  public:
    demo_source(std::uint64_t n, std::uint64_t seed) : n_(n), left_(n), rng_(seed) {}
    expected<std::optional<task_spec>, std::string> next() override {
        if (left_ == 0) return std::optional<task_spec>{};
        --left_;
        return std::optional<task_spec>{task_spec{"sleep", std::to_string(dist_(rng_))}};
    }
    std::optional<std::uint64_t> size() const override { return n_; }

  private:
    std::uint64_t n_;
    std::uint64_t left_;
    std::mt19937_64 rng_;
    std::uniform_int_distribution<int> dist_{1, 100};
};

class file_source final : public task_source {
  public:
    file_source(std::unique_ptr<std::ifstream> file, std::istream& in, std::string path)
        : file_(std::move(file)), in_(in), path_(std::move(path)) {}
    expected<std::optional<task_spec>, std::string> next() override {
        std::string line;
        while (std::getline(in_, line)) {
            ++line_no_;
            if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
            auto spec = parse_task_line(line);
            if (!spec)
                return unexpected{path_ + ":" + std::to_string(line_no_) + ": " + spec.error()};
            return std::optional<task_spec>{std::move(*spec)};
        }
        if (in_.bad()) return unexpected{path_ + ": read error: " + std::strerror(errno)};
        return std::optional<task_spec>{};
    }

  private:
    std::unique_ptr<std::ifstream> file_;
    std::istream& in_;
    std::string path_;
    std::uint64_t line_no_ = 0;
};

}  // namespace

expected<bool, std::string> task_source::next_into(task_spec& out) {
    auto got = next();
    if (!got) return unexpected{std::move(got.error())};
    if (!*got) return false;
    out = std::move(**got);
    return true;
}

task_spec& task_queue::next_slot() {
    if (count_ == ring_.size()) {
        // Full: unroll it from its head, then double it.
        std::rotate(ring_.begin(), ring_.begin() + static_cast<std::ptrdiff_t>(head_), ring_.end());
        head_ = 0;
        ring_.resize(std::max<std::size_t>(8, 2 * ring_.size()));
    }
    return (*this)[count_];
}

std::unique_ptr<task_source> make_fixed_source(std::uint64_t n, std::string kind,
                                               std::string payload) {
    return std::make_unique<fixed_source>(n, std::move(kind), std::move(payload));
}

std::unique_ptr<task_source> make_demo_source(std::uint64_t n, std::uint64_t seed) {
    return std::make_unique<demo_source>(n, seed);
}

expected<task_spec, std::string> parse_task_line(const std::string& line) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return unexpected{std::string("not valid JSON")};
    if (!j.is_object()) return unexpected{std::string("expected a JSON object")};
    auto kind = j.find("kind");
    if (kind == j.end() || !kind->is_string() || kind->get_ref<const std::string&>().empty())
        return unexpected{std::string("\"kind\" must be a non-empty string")};
    task_spec spec;
    spec.kind = kind->get<std::string>();
    if (spec.kind.size() > proto::k_max_name)
        return unexpected{std::string("\"kind\" is too long")};
    if (auto p = j.find("payload"); p != j.end()) {
        spec.payload = p->is_string() ? p->get<std::string>() : p->dump();
    }
    return spec;
}

expected<std::unique_ptr<task_source>, std::string> open_tasks_file(const std::string& path) {
    if (path == "-")
        return std::unique_ptr<task_source>(
            std::make_unique<file_source>(nullptr, std::cin, "stdin"));
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
        return unexpected{"cannot read " + path + ": is a directory"};
    auto f = std::make_unique<std::ifstream>(path);
    if (!*f) return unexpected{"cannot read " + path + ": " + std::strerror(errno)};
    std::istream& in = *f;
    return std::unique_ptr<task_source>(std::make_unique<file_source>(std::move(f), in, path));
}

expected<std::uint64_t, std::string> validate_tasks_file(const std::string& path) {
    auto src = open_tasks_file(path);
    if (!src) return unexpected{src.error()};
    std::uint64_t n = 0;
    for (;;) {
        auto t = (*src)->next();
        if (!t) return unexpected{t.error()};
        if (!*t) return n;
        ++n;
    }
}

}  // namespace zfarm::ventilator
