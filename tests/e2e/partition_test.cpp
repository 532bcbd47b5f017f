// Network faults, real ones: a worker in its own network namespace, joined to
// the host by a veth pair, while the sink, the ventilator and the other
// workers run on the host. Its cable is pulled mid-job (11.3: "a cut
// network"), or its link is made slow, lossy and reordering. Each test
// reports, Jepsen-style, what was attempted and what the sink recorded, and
// passes only when nothing was lost and nothing was recorded twice
// (PROTOCOL.md 11.1: every task of a job is recorded once).
//
// Needs root, iproute2 and iptables (and, where the kernel has no netem, the
// NFQUEUE impairer built from support/link_impairer.cpp); without them the
// tests skip and say why.
#include <signal.h>
#include <unistd.h>

#include <map>
#include <optional>
#include <thread>

#include <gtest/gtest.h>

#include "support/fault_report.hpp"
#include "support/netns.hpp"
#include "support/pipeline.hpp"

namespace zfarm::test {
namespace {

double epoch_seconds() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

std::string fixed(double x, int decimals = 1) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, x);
    return buf;
}

// The worker in the namespace, by its --id.
constexpr const char* k_cut_off = "netns-worker";

class Partition : public ::testing::TestWithParam<std::string> {
  protected:
    void SetUp() override {
        std::string why_not;
        ns_ = network_namespace::create(why_not);
        if (!ns_) GTEST_SKIP() << "cannot give a worker its own network namespace: " << why_not;
        farm_.emplace(GetParam(), ns_->host_address());
    }

    // The results recorded so far by `worker`, parsed (only those lines).
    std::vector<nlohmann::json> recorded_by(const std::string& worker) const {
        std::vector<nlohmann::json> out;
        const std::string needle = "\"worker\":\"" + worker + "\"";
        for (const auto& line : read_lines(farm_->output()))
            if (line.find(needle) != std::string::npos)
                out.push_back(nlohmann::json::parse(line, nullptr, false));
        return out;
    }

    // Makes the link of the namespace slow, lossy and reordering, both ways:
    // netem where the kernel has it, else the NFQUEUE impairer
    // (zfarm-test-impair, in the namespace). Returns what runs, "netem (...)"
    // or "nfqueue (...)", or "" with the reason in `why_not` when neither can.
    std::string degrade_link(std::string& why_not) {
        const std::vector<std::string> netem{"root", "netem", "delay",   "30ms", "10ms",
                                             "loss", "2%",    "reorder", "10%"};
        auto host = std::vector<std::string>{"tc", "qdisc", "add", "dev", ns_->host_interface()};
        host.insert(host.end(), netem.begin(), netem.end());
        const auto on_host = run_command(host);
        if (on_host.ok()) {
            auto inner =
                std::vector<std::string>{"tc", "qdisc", "add", "dev", ns_->inner_interface()};
            inner.insert(inner.end(), netem.begin(), netem.end());
            const auto inside = ns_->run_inside(inner);
            if (!inside.ok()) {
                why_not = "netem on the host end but not inside: " + inside.output;
                return "";
            }
            return "netem (delay 30±10 ms, loss 2 %, reorder 10 %, both ways)";
        }
        std::string no_netem = on_host.output;
        while (!no_netem.empty() && no_netem.back() == '\n')
            no_netem.pop_back();
#ifdef ZFARM_IMPAIRER
        const std::string seed = std::to_string(::getpid());
        auto args = ns_->exec_prefix();
        args.insert(args.end(), {ZFARM_IMPAIRER, "--queue", "0", "--delay-ms", "30", "--jitter-ms",
                                 "10", "--loss", "0.02", "--reorder", "0.1", "--seed", seed});
        const std::vector<std::string> rest(args.begin() + 1, args.end());
        impairer_.emplace(args[0], rest, farm_->dir().path(), "impairer");
        if (!wait_until(
                [&] {
                    return impairer_->stdout_text().find("ready") != std::string::npos ||
                           !impairer_->running();
                },
                k_start_timeout) ||
            impairer_->stdout_text().find("ready") == std::string::npos) {
            why_not = "no netem (" + no_netem +
                      ") and the NFQUEUE impairer did not start: " + impairer_->stderr_text();
            return "";
        }
        // Inside the namespace both ways: what arrives on its end and what
        // leaves by it. No --queue-bypass: the impairer is surely in the path.
        for (const auto& [chain, direction] : {std::pair{"INPUT", "-i"}, { "OUTPUT", "-o" }}) {
            const auto r =
                ns_->run_inside({"iptables", "-w", "10", "-I", chain, direction,
                                 ns_->inner_interface(), "-j", "NFQUEUE", "--queue-num", "0"});
            if (!r.ok()) {
                why_not = "no netem (" + no_netem + ") and iptables NFQUEUE failed: " + r.output;
                return "";
            }
        }
        return "nfqueue (delay 30±10 ms, loss 2 %, reorder 10 %, both ways; no netem: " + no_netem +
               ")";
#else
        why_not = "no netem (" + no_netem +
                  ") and the NFQUEUE impairer was not built (install libnetfilter-queue-dev)";
        return "";
#endif
    }

    bool sink_logged(const std::string& text) {
        return sink_log_count(text) > 0;
    }

    std::size_t sink_log_count(const std::string& text) {
        const auto log = farm_->sink().stderr_text();
        std::size_t count = 0;
        for (auto at = log.find(text); at != std::string::npos; at = log.find(text, at + 1))
            ++count;
        return count;
    }

    // Declared in this order so that the pipeline's programs are killed before
    // the namespace goes.
    std::unique_ptr<network_namespace> ns_;
    std::optional<pipeline> farm_;
    std::optional<child_process> impairer_;  // goes first: the link then goes dead
};

// Issue 3, test 8 (partition): a worker's cable is pulled for 10 s mid-job,
// then plugged back in. The sink declares it lost and its tasks are sent
// again (11.3); the job goes on without it; after the heal it rejoins (7.9,
// rule 3) and runs new tasks. Nothing is lost, nothing recorded twice.
TEST_P(Partition, CutOffWorkerLosesNothingAndRejoinsAfterTheHeal) {
    if (find_program("iptables").empty())
        GTEST_SKIP() << "cannot pull the cable: no `iptables` program (install iptables)";
    auto& farm = *farm_;
    constexpr std::uint64_t n = 2400;
    constexpr auto cut_for = std::chrono::seconds(10);
    farm.start_sink({"--once"});
    farm.start_worker({"--exit-when-done"});
    farm.start_worker({"--exit-when-done"});
    farm.start_worker_under(ns_->exec_prefix(), {"--exit-when-done", "--id", k_cut_off});
    farm.start_ventilator({"--sleep", std::to_string(n), "--ms", "20", "--job", "partition"});
    // The namespaced worker does its share before the cut.
    ASSERT_TRUE(wait_until([&] { return recorded_by(k_cut_off).size() >= 20; }, k_start_timeout))
        << "the worker in " << ns_->name() << " recorded nothing before the cut";

    std::string why;
    const auto cut_at = std::chrono::steady_clock::now();
    ASSERT_TRUE(ns_->cut(why)) << why;
    std::optional<double> declared_lost_after;
    if (wait_until([&] { return sink_logged(std::string("worker ") + k_cut_off + " lost"); },
                   std::chrono::duration_cast<std::chrono::milliseconds>(cut_for)))
        declared_lost_after = seconds_since(cut_at);
    // Holding the partition is the fault itself.
    std::this_thread::sleep_until(cut_at + cut_for);
    const double healed_epoch = epoch_seconds();
    const auto healed_at = std::chrono::steady_clock::now();
    ASSERT_TRUE(ns_->heal(why)) << why;
    const double cut_off_for = std::chrono::duration<double>(healed_at - cut_at).count();

    std::optional<double> rejoined_after;
    if (wait_until([&] { return sink_logged(std::string("worker ") + k_cut_off + " rejoined"); },
                   k_start_timeout))
        rejoined_after = seconds_since(healed_at);
    const auto started_after_heal = [&] {
        std::size_t count = 0;
        for (const auto& r : recorded_by(k_cut_off))
            if (r.value("start", 0.0) >= healed_epoch) ++count;
        return count;
    };
    std::optional<double> first_new_result_after;
    if (wait_until([&] { return started_after_heal() >= 1; }, k_start_timeout))
        first_new_result_after = seconds_since(healed_at);

    ASSERT_EQ(farm.ventilator().wait_for_exit(k_exit_timeout), 0);
    EXPECT_EQ(farm.sink().wait_for_exit(k_exit_timeout), 0);
    const auto results = read_results(farm.output());
    auto report = tally(results, n);
    report.duplicate_deliveries = duplicate_deliveries(farm.sink().stderr_text());
    const auto after_heal = started_after_heal();
    std::printf(
        "[fault] partition (iptables DROP both ways on the veth, no RST), %s: %s; worker cut "
        "off %s s, declared lost %s, rejoined %s, %zu result(s) started after the heal\n",
        farm.dispatch().c_str(), describe(report).c_str(), fixed(cut_off_for).c_str(),
        declared_lost_after ? (fixed(*declared_lost_after) + " s into the cut").c_str() : "never",
        rejoined_after ? (fixed(*rejoined_after) + " s after the heal").c_str() : "never",
        after_heal);
    EXPECT_EQ(report.lost, 0u);
    EXPECT_EQ(report.duplicates_recorded, 0u);
    EXPECT_TRUE(has_each_id_once(results, n));
    EXPECT_TRUE(declared_lost_after) << "the sink never declared the cut-off worker lost";
    EXPECT_TRUE(rejoined_after) << "the cut-off worker never rejoined";
    EXPECT_TRUE(first_new_result_after) << "the cut-off worker ran nothing new after the heal";
}

// Issue 3, test 8 (degraded link): the namespaced worker's link delays,
// drops and reorders packets both ways for the whole job. TCP repairs the
// byte stream, heartbeats still arrive within the liveness timeout; the job
// completes with nothing lost and nothing recorded twice.
TEST_P(Partition, DegradedLinkLosesNothing) {
    auto& farm = *farm_;
    constexpr std::uint64_t n = 3000;
    std::string why;
    const std::string impairment = degrade_link(why);
    if (impairment.empty()) GTEST_SKIP() << "cannot degrade the link: " << why;

    farm.start_sink({"--once"});
    farm.start_worker({"--exit-when-done"});
    farm.start_worker({"--exit-when-done"});
    farm.start_worker_under(ns_->exec_prefix(), {"--exit-when-done", "--id", k_cut_off});
    farm.start_ventilator({"--sleep", std::to_string(n), "--ms", "10", "--job", "degraded"});
    ASSERT_EQ(farm.ventilator().wait_for_exit(k_exit_timeout), 0);
    EXPECT_EQ(farm.sink().wait_for_exit(k_exit_timeout), 0);

    std::string counts;
    if (impairer_) {
        EXPECT_TRUE(impairer_->running()) << "the impairer died: " << impairer_->stderr_text();
        impairer_->signal(SIGTERM);
        EXPECT_EQ(impairer_->wait_for_exit(k_exit_timeout), 0);
        counts = last_lines(impairer_->stdout_text(), 1);
        while (!counts.empty() && counts.back() == '\n')
            counts.pop_back();
    }
    const auto results = read_results(farm.output());
    auto report = tally(results, n);
    report.duplicate_deliveries = duplicate_deliveries(farm.sink().stderr_text());
    const auto by_netns_worker = recorded_by(k_cut_off).size();
    std::printf(
        "[fault] degraded link via %s, %s: %s; the worker behind it recorded %zu and was declared "
        "lost %zu time(s)%s%s\n",
        impairment.c_str(), farm.dispatch().c_str(), describe(report).c_str(), by_netns_worker,
        sink_log_count(std::string("worker ") + k_cut_off + " lost"),
        counts.empty() ? "" : "; impairer: ", counts.c_str());
    EXPECT_EQ(report.lost, 0u);
    EXPECT_EQ(report.duplicates_recorded, 0u);
    EXPECT_TRUE(has_each_id_once(results, n));
    EXPECT_GT(by_netns_worker, 0u) << "the worker behind the degraded link did no work";
    if (impairer_) {
        EXPECT_EQ(counts.rfind("packets ", 0), 0u) << counts;
        EXPECT_EQ(counts.find("packets 0,"), std::string::npos) << "nothing crossed the impairer";
    }
}

INSTANTIATE_TEST_SUITE_P(BothDispatchModes, Partition, ::testing::Values("push", "credit"),
                         [](const auto& mode) { return mode.param; });

}  // namespace
}  // namespace zfarm::test
