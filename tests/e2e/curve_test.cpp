// End-to-end: CURVE on every socket of the three programs (PROTOCOL.md 12).
// Allow-listed workers work in both dispatch modes; a worker or ventilator
// with an unknown key, no key (the NULL mechanism) or the wrong server key
// gets no task and delivers nothing; a binding program refuses to run
// without a ZAP handler or with a secret key others may read; garbage on
// every bound port never gets past the handshake; no log holds a secret.
#include <signal.h>
#include <sys/stat.h>

#include <cstdlib>
#include <deque>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "support/curve_keys.hpp"
#include "support/pipeline.hpp"
#include "support/raw_tcp.hpp"
#include "zfarm/codec.hpp"

namespace zfarm::test {
namespace {

// After every refusal that can be observed has been, how long rogues keep
// trying while the job must not progress: 15 of their 100 ms reconnects.
constexpr auto k_rogue_window = std::chrono::milliseconds(1500);

std::vector<std::string> operator+(std::vector<std::string> a, const std::vector<std::string>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

bool contains(const std::string& text, const std::string& what) {
    return text.find(what) != std::string::npos;
}

// Exactly one line, holding every one of `parts`.
::testing::AssertionResult is_one_line_with(const std::string& text,
                                            const std::vector<std::string>& parts) {
    if (text.empty() || text.back() != '\n' || text.find('\n') != text.size() - 1)
        return ::testing::AssertionFailure() << "not one line: \"" << text << "\"";
    for (const auto& p : parts)
        if (!contains(text, p))
            return ::testing::AssertionFailure() << "\"" << text << "\" does not say " << p;
    return ::testing::AssertionSuccess();
}

// VmRSS of process `pid` in KiB (0 when it cannot be read).
std::uint64_t resident_kib(pid_t pid) {
    std::istringstream status(read_file("/proc/" + std::to_string(pid) + "/status"));
    std::string line;
    while (std::getline(status, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6));
    return 0;
}

// A pipeline and the key pairs of its sink, ventilator and workers (each
// program its own pair, the layout that needs every flag), plus a rogue
// pair nobody allows.
struct curve_cluster {
    explicit curve_cluster(const std::string& dispatch) : farm(dispatch) {}

    std::vector<std::string> sink_args(const std::vector<std::string>& extra) const {
        return server_flags(sink_keys, sink_allow) + extra;
    }
    std::vector<std::string> ventilator_args(const std::vector<std::string>& extra) const {
        return server_flags(ventilator_keys, ventilator_allow) +
               std::vector<std::string>{"--curve-server-key", sink_keys.public_file} + extra;
    }
    std::vector<std::string> worker_args(const std::vector<std::string>& extra) const {
        return client_flags(worker_keys, sink_keys, &ventilator_keys) + extra;
    }
    std::vector<const test_keys*> all_keys() const {
        return {&sink_keys, &ventilator_keys, &worker_keys, &rogue_keys};
    }
    std::string results_endpoint() const { return tcp_endpoint(farm.ports().results); }
    std::uint16_t ventilator_port() const {
        return farm.dispatch() == "credit" ? farm.ports().credit : farm.ports().tasks;
    }

    pipeline farm;
    std::filesystem::path keys_dir = farm.dir() / "keys";
    test_keys sink_keys = make_keys(keys_dir, "sink");
    test_keys ventilator_keys = make_keys(keys_dir, "ventilator");
    test_keys worker_keys = make_keys(keys_dir, "worker");
    test_keys rogue_keys = make_keys(keys_dir, "rogue");
    // The sink admits workers and the ventilator; the ventilator, workers.
    std::string sink_allow = allow_list(keys_dir, "sink-allow", {&worker_keys, &ventilator_keys});
    std::string ventilator_allow = allow_list(keys_dir, "ventilator-allow", {&worker_keys});
};

class CurvePipeline : public ::testing::TestWithParam<std::string> {
  protected:
    void TearDown() override {
        EXPECT_TRUE(no_log_holds_a_secret(c.farm.dir().path(), c.all_keys()));
    }

    curve_cluster c{GetParam()};
    pipeline& farm = c.farm;
};

TEST_P(CurvePipeline, AllowListedWorkersRecordEveryResultOnce) {
    constexpr std::uint64_t n = 300;
    farm.start_sink(c.sink_args({"--once"}));
    for (int i = 0; i < 2; ++i)
        farm.start_worker(c.worker_args({"--exit-when-done"}));
    farm.start_ventilator(
        c.ventilator_args({"--sleep", std::to_string(n), "--ms", "1", "--job", "curve"}));

    ASSERT_EQ(farm.ventilator().wait_for_exit(k_exit_timeout), 0);
    EXPECT_EQ(farm.sink().wait_for_exit(k_exit_timeout), 0);
    for (auto* w : farm.workers())
        EXPECT_EQ(w->wait_for_exit(k_exit_timeout), 0) << w->name();
    const auto results = read_results(farm.output());
    EXPECT_TRUE(has_each_id_once(results, n));
    EXPECT_TRUE(all_ok_first_attempt(results));
    EXPECT_TRUE(is_summary_line(farm.ventilator().stdout_text(), "curve", n, n, 0,
                                workers_of(results).size()));
    EXPECT_TRUE(contains(
        farm.sink().stderr_text(),
        "CURVE on: public key " + c.sink_keys.fingerprint + "..., 2 client key(s) allowed"));
    EXPECT_TRUE(contains(farm.ventilator().stderr_text(),
                         "CURVE on: public key " + c.ventilator_keys.fingerprint));
    EXPECT_TRUE(contains(farm.sink().stderr_text(), " 0 bad frame(s) dropped"));
}

// The messages a rogue would forge on the sink's results socket: a HELLO
// and a RESULT for id 0 of `job`.
std::vector<std::string> forged_messages(const std::string& job, const std::string& worker) {
    proto::hello h;
    h.worker = worker;
    h.host = "forger";
    proto::result r;
    r.job = job;
    r.id = 0;
    r.attempt = 1;
    r.worker = worker;
    r.output = "forged";
    return {proto::encode(h), proto::encode(r)};
}

TEST_P(CurvePipeline, RogueWorkersGetNoTaskAndDeliverNoResult) {
    constexpr std::uint64_t n = 50;
    farm.start_sink(c.sink_args({"--once"}));
    farm.start_ventilator(
        c.ventilator_args({"--sleep", std::to_string(n), "--ms", "1", "--job", "curve"}));
    ASSERT_TRUE(wait_until([&] { return contains(farm.sink().stderr_text(), "job curve opened"); },
                           k_start_timeout))
        << "the ventilator never reached the sink";

    // Worker processes: a key nobody allows, no key, and an allowed key
    // that expects the wrong server key (so it cannot authenticate anyone).
    farm.start_worker(client_flags(c.rogue_keys, c.sink_keys, &c.ventilator_keys) +
                      std::vector<std::string>{"--id", "rogue-unknown-key", "--exit-when-done"});
    farm.start_worker({"--id", "rogue-no-key", "--exit-when-done"});
    farm.start_worker(
        client_flags(c.worker_keys, c.rogue_keys, &c.rogue_keys) +
        std::vector<std::string>{"--id", "rogue-wrong-server-key", "--exit-when-done"});
    // The same credentials forging a HELLO and a RESULT straight to the sink.
    handshake_probe unknown(c.results_endpoint(), &c.rogue_keys.keys, c.sink_keys.keys.public_key);
    handshake_probe no_key(c.results_endpoint(), nullptr, c.sink_keys.keys.public_key);
    handshake_probe misled(c.results_endpoint(), &c.worker_keys.keys, c.rogue_keys.keys.public_key);
    for (auto [probe, name] :
         {std::pair{&unknown, "forger-unknown-key"}, std::pair{&no_key, "forger-no-key"},
          std::pair{&misled, "forger-wrong-server-key"}})
        for (const auto& m : forged_messages("curve", name))
            probe->send(m);
    // The unknown key at the ventilator too, whether or not the rogue worker
    // got there before it left on the sink's refusal.
    handshake_probe at_ventilator(
        tcp_endpoint(c.ventilator_port()), &c.rogue_keys.keys, c.ventilator_keys.keys.public_key,
        farm.dispatch() == "credit" ? zmq::socket_type::dealer : zmq::socket_type::pull);
    // The forging code works: with the worker's credentials its HELLO arrives.
    handshake_probe allowed(c.results_endpoint(), &c.worker_keys.keys, c.sink_keys.keys.public_key);
    allowed.send(forged_messages("curve", "forger-allowed").front());

    EXPECT_EQ(unknown.wait(k_start_timeout), handshake_outcome::failed);
    EXPECT_EQ(no_key.wait(k_start_timeout), handshake_outcome::failed);
    EXPECT_EQ(misled.wait(k_start_timeout), handshake_outcome::failed);
    EXPECT_EQ(at_ventilator.wait(k_start_timeout), handshake_outcome::failed);
    EXPECT_EQ(allowed.wait(k_start_timeout), handshake_outcome::succeeded);
    EXPECT_TRUE(wait_until(
        [&] { return contains(farm.sink().stderr_text(), "worker forger-allowed joined"); },
        k_start_timeout));
    // The unknown key is refused, and logged, by both binding programs.
    const std::string refused = "key " + c.rogue_keys.fingerprint + "... is not on the allow-list";
    EXPECT_TRUE(
        wait_until([&] { return contains(farm.sink().stderr_text(), refused); }, k_start_timeout));
    EXPECT_TRUE(wait_until([&] { return contains(farm.ventilator().stderr_text(), refused); },
                           k_start_timeout));
    std::this_thread::sleep_for(k_rogue_window);  // the rogues keep trying meanwhile
    EXPECT_EQ(count_lines(farm.output()), 0u) << "a rogue recorded a result";
    for (const auto* rogue : {"rogue-", "forger-unknown", "forger-no-key", "forger-wrong"})
        EXPECT_FALSE(contains(farm.sink().stderr_text(), "worker " + std::string(rogue)))
            << "the sink heard from " << rogue;

    // A legitimate worker does the whole job; the rogues did none of it.
    auto& legit = farm.start_worker(c.worker_args({"--id", "legit", "--exit-when-done"}));
    ASSERT_EQ(farm.ventilator().wait_for_exit(k_exit_timeout), 0);
    EXPECT_EQ(farm.sink().wait_for_exit(k_exit_timeout), 0);
    EXPECT_EQ(legit.wait_for_exit(k_exit_timeout), 0);
    const auto results = read_results(farm.output());
    EXPECT_TRUE(has_each_id_once(results, n));
    EXPECT_EQ(workers_of(results), std::set<std::string>{"legit"});
    // With --exit-when-done they would leave on the sink's DONE, which they
    // cannot subscribe to.
    for (std::size_t i = 0; i < 3; ++i)
        EXPECT_FALSE(contains(farm.workers()[i]->stderr_text(), " leaving: "))
            << farm.workers()[i]->name() << " heard the sink's DONE";
}

TEST_P(CurvePipeline, GarbageOnEveryBoundPortNeverGetsPastTheHandshake) {
    constexpr std::uint64_t n = 3000;
    farm.start_sink(c.sink_args({"--once", "--handshake-timeout", "1"}));
    for (int i = 0; i < 2; ++i)
        farm.start_worker(c.worker_args({"--exit-when-done"}));
    farm.start_ventilator(c.ventilator_args({"--handshake-timeout", "1", "--sleep",
                                             std::to_string(n), "--ms", "2", "--job", "garbage"}));
    ASSERT_TRUE(wait_until([&] { return count_lines(farm.output()) > 0; }, k_start_timeout))
        << "the job did not start";
    const auto rss_before = resident_kib(farm.sink().pid());

    const std::vector<std::uint16_t> ports{farm.ports().results, farm.ports().control,
                                           c.ventilator_port()};
    std::mt19937 rng(20261127);
    silent_connections silent(ports, 10);
    for (auto port : ports)
        for (const auto& bytes : hostile_greetings(rng))
            send_raw_tcp(port, bytes);
    EXPECT_EQ(churn_connections(ports, 1000, 100, rng), 1000u);
    // ZeroMQ peers without an allowed key, sending frames that would be
    // dropped as bad input if they got through.
    const std::vector<std::string> bad_frames{random_bytes(rng, 64),
                                              std::string("\xdd\xff\xff\xff\xff", 5),
                                              std::string("\x92\x02\x03", 3)};
    const auto ventilator_ep = tcp_endpoint(c.ventilator_port());
    const auto peer_type =
        farm.dispatch() == "credit" ? zmq::socket_type::dealer : zmq::socket_type::pull;
    handshake_probe null_to_sink(c.results_endpoint(), nullptr, c.sink_keys.keys.public_key);
    handshake_probe rogue_to_sink(c.results_endpoint(), &c.rogue_keys.keys,
                                  c.sink_keys.keys.public_key);
    handshake_probe rogue_to_ventilator(ventilator_ep, &c.rogue_keys.keys,
                                        c.ventilator_keys.keys.public_key, peer_type);
    for (auto* p : {&null_to_sink, &rogue_to_sink})
        for (const auto& f : bad_frames)
            p->send(f);
    if (peer_type == zmq::socket_type::dealer)  // a PULL peer of the tasks PUSH sends nothing
        for (const auto& f : bad_frames)
            rogue_to_ventilator.send(f);
    EXPECT_TRUE(farm.ventilator().running())
        << "the job ended before the garbage was sent; it tests nothing";

    EXPECT_EQ(null_to_sink.wait(k_start_timeout), handshake_outcome::failed);
    EXPECT_EQ(rogue_to_sink.wait(k_start_timeout), handshake_outcome::failed);
    EXPECT_EQ(rogue_to_ventilator.wait(k_start_timeout), handshake_outcome::failed);
    // --handshake-timeout 1 closes connections that never say anything
    // (libzmq's default would wait 30 s).
    EXPECT_TRUE(wait_until([&] { return silent.closed_by_peer() == silent.size(); },
                           std::chrono::seconds(15)))
        << silent.closed_by_peer() << " of " << silent.size() << " silent connections closed";
    const auto rss_after = resident_kib(farm.sink().pid());
    EXPECT_LT(rss_after, rss_before + 64 * 1024)
        << "the sink grew from " << rss_before << " KiB to " << rss_after << " KiB";

    ASSERT_EQ(farm.ventilator().wait_for_exit(k_exit_timeout), 0);
    EXPECT_EQ(farm.sink().wait_for_exit(k_exit_timeout), 0);
    for (auto* w : farm.workers()) {
        EXPECT_EQ(w->wait_for_exit(k_exit_timeout), 0) << w->name();
        EXPECT_TRUE(contains(w->stderr_text(), " 0 bad frames dropped")) << w->name();
    }
    const auto results = read_results(farm.output());
    EXPECT_TRUE(has_each_id_once(results, n));
    EXPECT_TRUE(all_ok_first_attempt(results));
    // Nothing reached application code: no frame was dropped as bad input.
    EXPECT_TRUE(contains(farm.sink().stderr_text(), " 0 bad frame(s) dropped"));
    EXPECT_TRUE(contains(farm.sink().stderr_text(), "refused a connection"));
    for (auto* p : {&farm.sink(), &farm.ventilator()})
        EXPECT_FALSE(contains(p->stderr_text(), "dropped a bad frame")) << p->name();
}

// A worker the sink or the ventilator refuses says why and exits 2 rather
// than waiting silently (libzmq does not retry a refused handshake, and a
// blocking send to a sink that refused us would wait forever); one whose
// server closes every handshake says what to check.
TEST_P(CurvePipeline, RefusedWorkersSayWhyAndExit2) {
    farm.start_sink(c.sink_args({"--once"}));
    farm.start_ventilator(c.ventilator_args({"--sleep", "5", "--ms", "1", "--job", "refused"}));
    auto& unknown = farm.start_worker(client_flags(c.rogue_keys, c.sink_keys, &c.ventilator_keys) +
                                      std::vector<std::string>{"--id", "rogue-unknown-key"});
    auto& no_key = farm.start_worker({"--id", "rogue-no-key"});
    auto& misled = farm.start_worker(client_flags(c.worker_keys, c.rogue_keys, &c.rogue_keys) +
                                     std::vector<std::string>{"--id", "rogue-wrong-server-key"});
    for (auto* w : {&unknown, &no_key})
        EXPECT_EQ(w->wait_for_exit(k_exit_timeout), 2) << w->name() << ": " << w->stderr_text();
    // A server that closes every handshake may be an impostor, with the
    // right one still to come: that worker warns and goes on trying.
    EXPECT_TRUE(wait_until(
        [&] {
            return contains(misled.stderr_text(), "closed the connection during the handshake");
        },
        k_start_timeout));
    EXPECT_TRUE(misled.running());
    EXPECT_TRUE(contains(unknown.stderr_text(), "refused this worker's key"))
        << unknown.stderr_text();
    EXPECT_TRUE(contains(unknown.stderr_text(), "--allow list"));
    EXPECT_TRUE(contains(no_key.stderr_text(), "mechanism mismatch): do both ends use CURVE?"))
        << no_key.stderr_text();
    EXPECT_TRUE(contains(misled.stderr_text(), "is the server key this worker was given the"))
        << misled.stderr_text();
    // A worker with the right keys still does the job.
    auto& legit = farm.start_worker(c.worker_args({"--id", "legit", "--exit-when-done"}));
    ASSERT_EQ(farm.ventilator().wait_for_exit(k_exit_timeout), 0);
    EXPECT_EQ(legit.wait_for_exit(k_exit_timeout), 0);
    EXPECT_EQ(workers_of(read_results(farm.output())), std::set<std::string>{"legit"});
}

INSTANTIATE_TEST_SUITE_P(BothDispatchModes, CurvePipeline, ::testing::Values("push", "credit"),
                         [](const auto& mode) { return mode.param; });

// Tests that need one pipeline's keys and ports but not both dispatch modes.
class CurveSingle : public ::testing::Test {
  protected:
    void TearDown() override {
        EXPECT_TRUE(no_log_holds_a_secret(c.farm.dir().path(), c.all_keys()));
    }

    // A program of this pipeline started outside it, e.g. on other ports.
    child_process& start(const std::string& program, const std::vector<std::string>& args,
                         const std::string& name) {
        return extra_.emplace_back(program, args, c.farm.dir().path(), name);
    }
    std::vector<std::string> sink_endpoints() const {
        return {"--results", tcp_endpoint(c.farm.ports().results), "--control",
                tcp_endpoint(c.farm.ports().control)};
    }

    curve_cluster c{"push"};
    pipeline& farm = c.farm;

  private:
    std::deque<child_process> extra_;
};

TEST_F(CurveSingle, RogueVentilatorsNeverReachTheSinkNorFeedWorkers) {
    constexpr std::uint64_t n = 100;
    farm.start_sink(c.sink_args({"--once"}));
    auto& worker = farm.start_worker(c.worker_args({"--exit-when-done"}));
    // An impostor on the ventilator's own port, with a key nobody allows:
    // the worker, which expects the ventilator's key, cannot take its tasks.
    auto& impostor = farm.start_ventilator(
        server_flags(c.rogue_keys, c.ventilator_allow) +
        std::vector<std::string>{"--curve-server-key", c.sink_keys.public_file, "--echo",
                                 std::to_string(n), "--job", "rogue-impostor"});
    // On ports of their own: one without a key, one with the ventilator's
    // key that expects the wrong sink key.
    start("zfarm-ventilator",
          sink_endpoints() + std::vector<std::string>{"--tasks", tcp_endpoint(free_tcp_port()),
                                                      "--echo", "10", "--job", "rogue-no-key"},
          "rogue-no-key");
    start("zfarm-ventilator",
          sink_endpoints() + server_flags(c.ventilator_keys, c.ventilator_allow) +
              std::vector<std::string>{"--curve-server-key", c.rogue_keys.public_file, "--tasks",
                                       tcp_endpoint(free_tcp_port()), "--echo", "10", "--job",
                                       "rogue-wrong-server-key"},
          "rogue-wrong-server-key");

    const std::string refused = "key " + c.rogue_keys.fingerprint + "... is not on the allow-list";
    ASSERT_TRUE(
        wait_until([&] { return contains(farm.sink().stderr_text(), refused); }, k_start_timeout));
    std::this_thread::sleep_for(k_rogue_window);  // the rogues keep trying meanwhile
    EXPECT_EQ(count_lines(farm.output()), 0u) << "a rogue job recorded a result";
    EXPECT_FALSE(contains(farm.sink().stderr_text(), "job rogue-")) << "a rogue job was opened";
    EXPECT_FALSE(contains(impostor.stderr_text(), "task(s) of job rogue-impostor sent"))
        << "the impostor sent its tasks";

    impostor.kill();
    farm.start_ventilator(c.ventilator_args({"--echo", std::to_string(n), "--job", "legit"}));
    ASSERT_EQ(farm.ventilator().wait_for_exit(k_exit_timeout), 0);
    EXPECT_EQ(farm.sink().wait_for_exit(k_exit_timeout), 0);
    EXPECT_EQ(worker.wait_for_exit(k_exit_timeout), 0);
    const auto results = read_results(farm.output());
    EXPECT_TRUE(has_each_id_once(results, n));
    for (const auto& r : results)
        EXPECT_EQ(r.value("job", ""), "legit") << r.dump();
    EXPECT_TRUE(contains(worker.stderr_text(), "leaving: " + std::to_string(n) + " ok, 0 failed"))
        << "the worker ran tasks that were not the legitimate job's";
}

// README's layout: the sink and the ventilator share one key pair, so a
// worker needs one server key.
TEST_F(CurveSingle, SinkAndVentilatorMaySharePairSoWorkersNeedOneServerKey) {
    constexpr std::uint64_t n = 100;
    const auto clients = allow_list(c.keys_dir, "clients", {&c.worker_keys, &c.sink_keys});
    farm.start_sink(server_flags(c.sink_keys, clients) + std::vector<std::string>{"--once"});
    farm.start_worker(client_flags(c.worker_keys, c.sink_keys) +
                      std::vector<std::string>{"--exit-when-done"});
    farm.start_ventilator(server_flags(c.sink_keys, clients) +
                          std::vector<std::string>{"--curve-server-key", c.sink_keys.public_file,
                                                   "--echo", std::to_string(n), "--job", "shared"});
    ASSERT_EQ(farm.ventilator().wait_for_exit(k_exit_timeout), 0);
    EXPECT_EQ(farm.sink().wait_for_exit(k_exit_timeout), 0);
    EXPECT_EQ(farm.workers()[0]->wait_for_exit(k_exit_timeout), 0);
    EXPECT_TRUE(has_each_id_once(read_results(farm.output()), n));
}

// Sets an environment variable for the programs started while it lives.
struct scoped_env {
    scoped_env(const char* name, const char* value) : name_(name) { ::setenv(name, value, 1); }
    ~scoped_env() { ::unsetenv(name_); }
    scoped_env(const scoped_env&) = delete;
    scoped_env& operator=(const scoped_env&) = delete;

  private:
    const char* name_;
};

// The regression test for libzmq's silent fallback: a CURVE server with no
// ZAP handler admits any key, so a binding program must refuse to run
// without one (not only check a flag: ZFARM_TEST_NO_ZAP=1 skips starting it
// and the program must notice no handler is bound).
TEST_F(CurveSingle, BindingProgramsRefuseToRunWithoutAZapHandler) {
    const auto ventilator_args = c.ventilator_args(
        sink_endpoints() + std::vector<std::string>{"--tasks", tcp_endpoint(farm.ports().tasks),
                                                    "--echo", "1", "--job", "no-zap"});
    {
        scoped_env no_zap("ZFARM_TEST_NO_ZAP", "1");
        auto& sink = start("zfarm-sink", sink_endpoints() + c.sink_args({}), "sink-no-zap");
        auto& ventilator = start("zfarm-ventilator", ventilator_args, "ventilator-no-zap");
        EXPECT_EQ(sink.wait_for_exit(k_exit_timeout), 2);
        EXPECT_EQ(ventilator.wait_for_exit(k_exit_timeout), 2);
        for (auto* p : {&sink, &ventilator})
            EXPECT_TRUE(contains(p->stderr_text(),
                                 "no ZAP handler is bound at "
                                 "inproc://zeromq.zap.01"))
                << p->name() << ": " << p->stderr_text();
    }
    // The same commands with the handler run: the exit was its absence.
    auto& sink = farm.start_sink(c.sink_args({}));
    EXPECT_TRUE(
        wait_until([&] { return contains(sink.stderr_text(), "sink up"); }, k_start_timeout));
    auto& ventilator = start("zfarm-ventilator", ventilator_args, "ventilator");
    EXPECT_TRUE(wait_until([&] { return contains(sink.stderr_text(), "job no-zap opened"); },
                           k_start_timeout));
    EXPECT_TRUE(sink.running());
    EXPECT_TRUE(ventilator.running());
}

TEST_F(CurveSingle, SecretKeyFileOthersMayReadIsRefused) {
    ASSERT_EQ(::chmod(c.worker_keys.secret_file.c_str(), 0644), 0);
    ASSERT_EQ(::chmod(c.sink_keys.secret_file.c_str(), 0640), 0);
    struct run {
        std::string program;
        std::vector<std::string> args;
        std::string file;
    };
    const std::vector<run> runs{
        {"zfarm-sink", sink_endpoints() + c.sink_args({}), c.sink_keys.secret_file},
        {"zfarm-ventilator",
         server_flags(c.worker_keys, c.ventilator_allow) +
             std::vector<std::string>{"--curve-server-key", c.sink_keys.public_file, "--echo", "1"},
         c.worker_keys.secret_file},
        {"zfarm-worker", c.worker_args({}), c.worker_keys.secret_file},
    };
    for (const auto& r : runs) {
        auto& p = start(r.program, r.args, r.program + "-readable-key");
        EXPECT_EQ(p.wait_for_exit(k_exit_timeout), 2) << r.program;
        EXPECT_TRUE(is_one_line_with(p.stderr_text(), {r.file, "chmod 600"})) << r.program;
        EXPECT_FALSE(contains(p.stderr_text(), "CURVE on")) << r.program;
    }
    // Secret keys stay out of the logs even when the file is refused.
    ASSERT_EQ(::chmod(c.worker_keys.secret_file.c_str(), 0600), 0);
    ASSERT_EQ(::chmod(c.sink_keys.secret_file.c_str(), 0600), 0);
    farm.start_sink(c.sink_args({}));  // a CURVE log for TearDown's check
    EXPECT_TRUE(wait_until([&] { return contains(farm.sink().stderr_text(), "CURVE on"); },
                           k_start_timeout));
}

TEST_F(CurveSingle, FlagsThatCannotWorkTogetherAreUsageErrors) {
    struct run {
        std::string program;
        std::vector<std::string> args;
        std::string says;
    };
    const auto& k = c;
    const std::vector<run> runs{
        {"zfarm-sink", {"--curve-secret", k.sink_keys.secret_file}, "needs --allow"},
        {"zfarm-ventilator",
         {"--curve-secret", k.ventilator_keys.secret_file, "--curve-server-key",
          k.sink_keys.public_file, "--echo", "1"},
         "needs --allow"},
        {"zfarm-ventilator",
         {"--curve-secret", k.ventilator_keys.secret_file, "--allow", k.ventilator_allow, "--echo",
          "1"},
         "needs --curve-server-key"},
        {"zfarm-worker", {"--curve-secret", k.worker_keys.secret_file}, "needs --curve-server-key"},
        {"zfarm-worker", {"--curve-server-key", k.sink_keys.public_file}, "needs --curve-secret"},
        {"zfarm-worker",
         {"--curve-ventilator-key", k.ventilator_keys.public_file},
         "needs --curve-secret"},
        {"zfarm-sink", {"--allow", k.sink_allow}, "needs --curve-secret"},
        {"zfarm-sink",
         {"--curve-secret", k.sink_keys.secret_file, "--allow", k.sink_keys.secret_file},
         "an allow-list takes public keys only"},
        {"zfarm-worker",
         {"--curve-secret", k.worker_keys.secret_file, "--curve-server-key",
          (k.keys_dir / "missing.pub").string()},
         "missing.pub"},
    };
    int i = 0;
    for (const auto& r : runs) {
        auto& p = start(r.program, r.args, "usage-" + std::to_string(++i));
        EXPECT_EQ(p.wait_for_exit(k_exit_timeout), 2) << r.program << " " << r.says;
        EXPECT_TRUE(is_one_line_with(p.stderr_text(), {r.program + ": error: ", r.says}));
    }
    // --help names the flags each program takes.
    for (const auto& [program, flags] :
         std::vector<std::pair<std::string, std::vector<std::string>>>{
             {"zfarm-sink", {"--curve-secret", "--allow", "--handshake-timeout"}},
             {"zfarm-ventilator", {"--curve-secret", "--curve-server-key", "--allow"}},
             {"zfarm-worker", {"--curve-secret", "--curve-server-key", "--curve-ventilator-key"}},
         }) {
        auto& p = start(program, {"--help"}, program + "-help");
        EXPECT_EQ(p.wait_for_exit(k_exit_timeout), 0);
        for (const auto& f : flags)
            EXPECT_TRUE(contains(p.stdout_text(), f)) << program << " --help lacks " << f;
    }
    farm.start_sink(c.sink_args({}));  // a CURVE log for TearDown's check
    EXPECT_TRUE(wait_until([&] { return contains(farm.sink().stderr_text(), "CURVE on"); },
                           k_start_timeout));
}

}  // namespace
}  // namespace zfarm::test
