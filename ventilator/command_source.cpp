#include "command_source.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>

namespace zfarm::ventilator {
namespace {

class command_source final : public task_source {
  public:
    command_source(std::unique_ptr<std::ifstream> file, std::istream& in, std::string path,
                   command_template tpl)
        : file_(std::move(file)), in_(in), path_(std::move(path)), tpl_(std::move(tpl)) {}

    expected<std::optional<task_spec>, std::string> next() override {
        if (!std::getline(in_, line_)) {
            if (in_.bad()) return unexpected{path_ + ": read error: " + std::strerror(errno)};
            return std::optional<task_spec>{};
        }
        ++line_no_;
        if (!line_.empty() && line_.back() == '\r') line_.pop_back();
        if (line_.find('\0') != std::string::npos)
            return unexpected{path_ + ":" + std::to_string(line_no_) +
                              ": the line holds a NUL byte, which no argument can carry"};
        return std::optional<task_spec>{
            task_spec{std::string(exec::k_kind), exec::encode(tpl_.expand(line_, line_no_))}};
    }

  private:
    std::unique_ptr<std::ifstream> file_;
    std::istream& in_;
    std::string path_;
    command_template tpl_;
    std::string line_;
    std::uint64_t line_no_ = 0;  // lines read: the task number ({#}) of the last one
};

}  // namespace

expected<std::unique_ptr<task_source>, std::string> open_command_source(const std::string& path,
                                                                        command_template tpl) {
    if (path == "-")
        return std::unique_ptr<task_source>(
            std::make_unique<command_source>(nullptr, std::cin, "stdin", std::move(tpl)));
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
        return unexpected{"cannot read " + path + ": is a directory"};
    auto f = std::make_unique<std::ifstream>(path, std::ios::binary);
    if (!*f) return unexpected{"cannot read " + path + ": " + std::strerror(errno)};
    std::istream& in = *f;
    return std::unique_ptr<task_source>(
        std::make_unique<command_source>(std::move(f), in, path, std::move(tpl)));
}

}  // namespace zfarm::ventilator
