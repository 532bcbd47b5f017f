// End-to-end: the ventilator's progress on stderr. Under a pseudo-terminal
// (util-linux `script`) a live line is redrawn in place, shows a plausible
// ETA and ends cleanly before the summary; with stderr a file it prints
// plain status lines every --progress-interval; -q silences both.
#include <filesystem>
#include <regex>

#include <gtest/gtest.h>

#include "support/pipeline.hpp"

namespace zfarm::test {
namespace {

const std::filesystem::path k_script = "/usr/bin/script";

std::string endpoint_args(const pipeline& p) {
    const auto& ports = p.ports();
    return " --dispatch " + p.dispatch() + " --tasks " + tcp_endpoint(ports.tasks) + " --credit " +
           tcp_endpoint(ports.credit) + " --results " + tcp_endpoint(ports.results) +
           " --control " + tcp_endpoint(ports.control);
}

TEST(Progress, LiveLineOnATerminalShowsAnEtaAndEndsBeforeTheSummary) {
    if (!std::filesystem::exists(k_script)) GTEST_SKIP() << "no " << k_script << " (util-linux)";
    pipeline p("credit");
    p.start_sink({"--once"});
    for (int i = 0; i < 2; ++i)
        p.start_worker({"--exit-when-done"});
    // 80 tasks of 40 ms on 2 workers: about 1.6 s, several redraws.
    const std::string command = (bin_dir() / "zfarm-ventilator").string() + endpoint_args(p) +
                                " --job tty --sleep 80 --ms 40";
    child_process tty(k_script.string(), {"-qec", command, "/dev/null"}, p.dir().path(), "tty");
    ASSERT_EQ(tty.wait_for_exit(k_exit_timeout), 0) << tty.stdout_text();
    const std::string out = tty.stdout_text();  // the terminal: stderr and stdout

    // Redrawn in place: erase the line, write the new one.
    EXPECT_NE(out.find("\r\x1b[Ktty 0/80 0.0%"), std::string::npos) << out;
    // Mid-job: a rate and an ETA of a few seconds (the job takes under 2 s
    // on an idle machine; a loaded one is slower, not 10 times).
    const std::regex mid(R"(tty (\d+)/80 (\d+\.\d)% (\d+)/s ETA (\d+)s 2 workers)");
    bool plausible = false;
    for (std::sregex_iterator it(out.begin(), out.end(), mid), end; it != end; ++it) {
        const int done = std::stoi((*it)[1]);
        const int eta = std::stoi((*it)[4]);
        if (done > 0 && done < 80 && std::stoi((*it)[3]) > 0 && eta <= 30) plausible = true;
    }
    EXPECT_TRUE(plausible) << out;
    // The final line says 100 % and ends with its newline, then the summary.
    const auto last = out.rfind("\r\x1b[Ktty 80/80 100.0%");
    ASSERT_NE(last, std::string::npos) << out;
    const auto eol = out.find('\n', last);
    ASSERT_NE(eol, std::string::npos);
    std::string final_line = out.substr(last + 1, eol - last - 1);
    if (!final_line.empty() && final_line.back() == '\r') final_line.pop_back();  // the pty's CR LF
    EXPECT_EQ(final_line.find('\r'), std::string::npos) << "nothing drawn over the final line";
    EXPECT_NE(out.find("job tty: 80 tasks, 80 ok, 0 failed", eol), std::string::npos) << out;
    EXPECT_EQ(out.find("\x1b[K", eol), std::string::npos) << "no redraw after the end";
    EXPECT_TRUE(has_each_id_once(read_results(p.output()), 80));
}

TEST(Progress, StatusLinesInTheLogWhenStderrIsNotATerminal) {
    pipeline p("push");
    p.start(2, {"--sleep", "60", "--ms", "40", "--progress-interval", "0.3"}, "plain");
    ASSERT_EQ(p.ventilator().wait_for_exit(k_exit_timeout), 0);
    const std::string err = p.ventilator().stderr_text();
    EXPECT_NE(err.find("progress: plain "), std::string::npos) << err;
    EXPECT_EQ(err.find('\r'), std::string::npos) << "no live line in a log";
    EXPECT_EQ(err.find("\x1b["), std::string::npos);
    EXPECT_EQ(p.ventilator().stdout_text().find("progress"), std::string::npos);
}

TEST(Progress, QuietShowsNone) {
    pipeline p("push");
    p.start(1, {"--sleep", "20", "--ms", "40", "--progress-interval", "0.2", "-q"}, "quiet");
    ASSERT_EQ(p.ventilator().wait_for_exit(k_exit_timeout), 0);
    EXPECT_EQ(p.ventilator().stderr_text().find("progress"), std::string::npos);
}

TEST(Progress, ABadIntervalIsAUsageError) {
    pipeline p("push");
    auto& v = p.start_ventilator({"--echo", "1", "--progress-interval", "-1"});
    EXPECT_EQ(v.wait_for_exit(k_exit_timeout), 2);
}

}  // namespace
}  // namespace zfarm::test
