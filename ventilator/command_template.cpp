#include "command_template.hpp"

#include <array>

namespace zfarm::ventilator {
namespace {

// Perl's File::Basename::_strip_trailing_sep: s{(.)/*\z}{$1}s, trailing
// slashes off but never the first character.
void strip_trailing_slashes(std::string& s) {
    while (s.size() > 1 && s.back() == '/')
        s.pop_back();
}

// File::Basename::fileparse on Unix: m{^(.*/)?(.*)}s, the directory "./"
// when there is no slash.
std::pair<std::string, std::string> file_parse(std::string_view s) {
    const auto slash = s.rfind('/');
    if (slash == std::string_view::npos) return {"./", std::string(s)};
    return {std::string(s.substr(0, slash + 1)), std::string(s.substr(slash + 1))};
}

}  // namespace

// GNU parallel: s:\.[^/.]*$::
std::string without_extension(std::string_view line) {
    const auto dot = line.rfind('.');
    if (dot == std::string_view::npos || line.find('/', dot) != std::string_view::npos)
        return std::string(line);
    return std::string(line.substr(0, dot));
}

// GNU parallel: s:.*/::
std::string basename_of(std::string_view line) {
    const auto slash = line.rfind('/');
    return std::string(slash == std::string_view::npos ? line : line.substr(slash + 1));
}

// GNU parallel: File::Basename::dirname
std::string dirname_of(std::string_view line) {
    auto [dir, base] = file_parse(line);
    strip_trailing_slashes(dir);
    if (base.empty()) {
        auto again = file_parse(dir);
        dir = std::move(again.first);
        strip_trailing_slashes(dir);
    }
    return dir;
}

// GNU parallel: s:.*/::; s:\.[^/.]*$::;
std::string basename_without_extension(std::string_view line) {
    return without_extension(basename_of(line));
}

command_template::command_template(const std::vector<std::string>& words, command_options opt)
    : opt_(std::move(opt)) {
    words_.reserve(words.size());
    for (const auto& w : words)
        words_.push_back(parse(w, has_replacement_));
}

command_template::word command_template::parse(std::string_view w, bool& found) {
    // Longest first, so "{//}" is not read as "{/}" followed by text.
    static constexpr std::array<std::pair<std::string_view, part_kind>, 6> k_tokens{{
        {"{//}", part_kind::dir},
        {"{/.}", part_kind::base_no_ext},
        {"{}", part_kind::line},
        {"{#}", part_kind::seq},
        {"{.}", part_kind::no_ext},
        {"{/}", part_kind::base},
    }};
    word out;
    std::string text;
    std::size_t i = 0;
    while (i < w.size()) {
        bool matched = false;
        if (w[i] == '{') {
            for (const auto& [token, kind] : k_tokens) {
                if (w.substr(i, token.size()) != token) continue;
                if (!text.empty()) out.push_back({part_kind::text, std::move(text)});
                text.clear();
                out.push_back({kind, {}});
                i += token.size();
                found = matched = true;
                break;
            }
        }
        if (!matched) text += w[i++];
    }
    if (!text.empty() || out.empty()) out.push_back({part_kind::text, std::move(text)});
    return out;
}

std::string command_template::render(const word& w, std::string_view line,
                                     std::uint64_t seq) const {
    std::string out;
    for (const auto& p : w) {
        std::string value;
        switch (p.kind) {
            case part_kind::text:
                out += p.text;  // shell text as the user wrote it, or a literal argument
                continue;
            case part_kind::line:
                value = std::string(line);
                break;
            case part_kind::seq:
                value = std::to_string(seq);
                break;
            case part_kind::no_ext:
                value = without_extension(line);
                break;
            case part_kind::base:
                value = basename_of(line);
                break;
            case part_kind::dir:
                value = dirname_of(line);
                break;
            case part_kind::base_no_ext:
                value = basename_without_extension(line);
                break;
        }
        out += opt_.shell ? exec::shell_quote(value) : value;
    }
    return out;
}

exec::command command_template::expand(std::string_view line, std::uint64_t seq) const {
    exec::command c;
    c.env = opt_.env;
    c.dir = opt_.dir;
    if (opt_.shell) {
        std::string script;
        for (const auto& w : words_) {
            if (!script.empty()) script += ' ';
            script += render(w, line, seq);
        }
        if (!has_replacement_) script += ' ' + exec::shell_quote(line);
        c.argv = {std::string(k_shell_path), "-c", std::move(script)};
        return c;
    }
    c.argv.reserve(words_.size() + (has_replacement_ ? 0 : 1));
    for (const auto& w : words_)
        c.argv.push_back(render(w, line, seq));
    if (!has_replacement_) c.argv.emplace_back(line);
    return c;
}

}  // namespace zfarm::ventilator
