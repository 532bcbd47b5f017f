// End-to-end: zfarm-ventilator --halt-on-failure (PROTOCOL.md 7.12) against
// a sink and a worker played by the test, which answers each TASK with an
// ACK and lists chosen ids in its `failed` (5.8, rule 7). The tasks are a
// command job, so the test also reads the exec payloads the ventilator
// builds (6.4) as a worker receives them. Runs in both dispatch modes.
#include <fstream>
#include <map>

#include <gtest/gtest.h>
#include <zmq.hpp>

#include "support/process.hpp"
#include "zfarm/codec.hpp"
#include "zfarm/exec_format.hpp"

namespace zfarm::test {
namespace {

constexpr auto k_exit_timeout = std::chrono::seconds(30);
constexpr const char* k_job = "halt-job";

// The sink's two sockets and a worker's socket, all on the test's thread.
class fake_farm {
  public:
    explicit fake_farm(const std::string& dispatch) : credit_(dispatch == "credit") {
        for (auto* s : {&results_, &control_, &worker_})
            s->set(zmq::sockopt::linger, 0);
        results_.bind(tcp_endpoint(results_port));
        control_.bind(tcp_endpoint(control_port));
        worker_.connect(tcp_endpoint(credit_ ? credit_port : tasks_port));
    }

    std::vector<std::string> ventilator_args(const std::string& dispatch) const {
        return {"--dispatch", dispatch,
                "--tasks",    tcp_endpoint(tasks_port),
                "--credit",   tcp_endpoint(credit_port),
                "--results",  tcp_endpoint(results_port),
                "--control",  tcp_endpoint(control_port),
                "--job",      k_job};
    }

    // Handles what arrives for up to `for_how_long`: answers JOB_OPEN,
    // notes JOB_CLOSE, keeps each TASK (answered by the test), grants credit.
    void pump(std::chrono::milliseconds for_how_long) {
        const auto until = std::chrono::steady_clock::now() + for_how_long;
        while (std::chrono::steady_clock::now() < until) {
            if (credit_ && !granted_) {
                send(worker_, proto::credit{"fake", 100, true});
                granted_ = true;
            }
            zmq::pollitem_t items[] = {{results_.handle(), 0, ZMQ_POLLIN, 0},
                                       {worker_.handle(), 0, ZMQ_POLLIN, 0}};
            zmq::poll(items, 2, std::chrono::milliseconds(10));
            zmq::message_t m;
            while (results_.recv(m, zmq::recv_flags::dontwait)) {
                auto d = proto::decode(m.to_string_view());
                if (!d) continue;
                if (std::holds_alternative<proto::job_open>(*d)) ack({}, {});
                if (auto* c = std::get_if<proto::job_close>(&*d)) closes.push_back(*c);
            }
            while (worker_.recv(m, zmq::recv_flags::dontwait)) {
                proto::decode_frame(m.to_string_view(), frame_);  // a TASK or a BATCH (5.15)
                for (auto& d : frame_)
                    if (auto* t = d ? std::get_if<proto::task>(&*d) : nullptr) tasks[t->id] = *t;
            }
        }
    }

    void ack(std::vector<std::uint64_t> ids, std::vector<std::uint64_t> failed) {
        control_.send(zmq::buffer(proto::k_topic_ack), zmq::send_flags::sndmore);
        send(control_, proto::ack{k_job, std::move(ids), {}, std::move(failed)});
    }
    void done(std::uint64_t total, std::uint64_t failed) {
        control_.send(zmq::buffer(proto::k_topic_done), zmq::send_flags::sndmore);
        send(control_, proto::done{k_job, total, total - failed, failed, 1, 1, 0});
    }

    std::uint16_t tasks_port = free_tcp_port();
    std::uint16_t credit_port = free_tcp_port();
    std::uint16_t results_port = free_tcp_port();
    std::uint16_t control_port = free_tcp_port();
    std::map<std::uint64_t, proto::task> tasks;  // received, by id
    std::vector<proto::job_close> closes;

  private:
    static void send(zmq::socket_t& s, const proto::message& m) {
        s.send(zmq::buffer(proto::encode(m)), zmq::send_flags::none);
    }

    bool credit_;
    bool granted_ = false;
    proto::decoded_frame frame_;
    zmq::context_t ctx_{1};
    zmq::socket_t results_{ctx_, zmq::socket_type::pull};
    zmq::socket_t control_{ctx_, zmq::socket_type::pub};
    zmq::socket_t worker_{ctx_, credit_ ? zmq::socket_type::dealer : zmq::socket_type::pull};
};

class HaltOnFailure : public ::testing::TestWithParam<std::string> {
  protected:
    std::string input(const std::string& text) {
        const auto path = dir / "input.txt";
        std::ofstream(path) << text;
        return path.string();
    }
    temp_dir dir;
};

// 7.12, rules 2 and 3: the failure of task 1 stops new tasks; tasks 0 and 2,
// in flight, are recorded; then the job is cancelled with the 3 sent.
TEST_P(HaltOnFailure, StopsSendingThenCancelsOnceInFlightTasksAreRecorded) {
    fake_farm farm(GetParam());
    std::string lines;
    for (int i = 0; i < 20; ++i)
        lines += "dir/file-" + std::to_string(i) + ".tar.gz\n";
    auto args = farm.ventilator_args(GetParam());
    args.insert(args.end(), {"--window", "3", "--halt-on-failure", "--input", input(lines), "--",
                             "gzip", "-d", "{}", "--out={/.}.{#}"});
    child_process vent("zfarm-ventilator", args, dir.path(), "ventilator");

    ASSERT_TRUE(wait_until(
        [&] {
            farm.pump(10ms);
            return farm.tasks.size() >= 3;
        },
        k_exit_timeout));
    ASSERT_EQ(farm.tasks.size(), 3u) << "the window is 3";
    for (std::uint64_t id = 0; id < 3; ++id) {
        const auto& t = farm.tasks.at(id);
        EXPECT_EQ(t.kind, "exec");
        auto c = exec::decode_command(t.payload);
        ASSERT_TRUE(c) << c.error();
        const std::string n = std::to_string(id);
        EXPECT_EQ(c->argv,
                  (std::vector<std::string>{"gzip", "-d", "dir/file-" + n + ".tar.gz",
                                            "--out=file-" + n + ".tar." + std::to_string(id + 1)}));
    }

    farm.ack({1}, {1});
    farm.pump(600ms);
    EXPECT_EQ(farm.tasks.size(), 3u) << "a task was sent after the failure";
    EXPECT_TRUE(farm.closes.empty()) << "cancelled while tasks were in flight";

    farm.ack({0, 2}, {});
    ASSERT_TRUE(wait_until(
        [&] {
            farm.pump(10ms);
            return !vent.running();
        },
        k_exit_timeout));
    farm.pump(100ms);
    EXPECT_EQ(vent.wait_for_exit(1s), 1);
    EXPECT_EQ(farm.tasks.size(), 3u);
    ASSERT_EQ(farm.closes.size(), 1u);
    EXPECT_TRUE(farm.closes[0].cancel);
    EXPECT_EQ(farm.closes[0].total, 3u);
    EXPECT_NE(vent.stdout_text().find("job halt-job halted: task 1 failed; 3 tasks sent, 1 failed"),
              std::string::npos)
        << vent.stdout_text();
}

// 7.12, rule 4: every task was sent and the job closed: it ends with DONE.
TEST_P(HaltOnFailure, ClosedJobEndsWithItsDone) {
    fake_farm farm(GetParam());
    auto args = farm.ventilator_args(GetParam());
    args.insert(args.end(),
                {"--halt-on-failure", "--input", input("a\nb\n"), "--shell", "--", "echo {} >&2"});
    child_process vent("zfarm-ventilator", args, dir.path(), "ventilator");

    ASSERT_TRUE(wait_until(
        [&] {
            farm.pump(10ms);
            return farm.tasks.size() == 2 && !farm.closes.empty();
        },
        k_exit_timeout));
    auto c = exec::decode_command(farm.tasks.at(1).payload);
    ASSERT_TRUE(c) << c.error();
    EXPECT_EQ(c->argv, (std::vector<std::string>{"/bin/sh", "-c", "echo b >&2"}));
    EXPECT_FALSE(farm.closes[0].cancel);

    farm.ack({0, 1}, {0});
    farm.done(2, 1);
    ASSERT_TRUE(wait_until(
        [&] {
            farm.pump(10ms);
            return !vent.running();
        },
        k_exit_timeout));
    EXPECT_EQ(vent.wait_for_exit(1s), 1);
    for (const auto& close : farm.closes)
        EXPECT_FALSE(close.cancel);
    EXPECT_NE(vent.stdout_text().find("job halt-job: 2 tasks, 1 ok, 1 failed"), std::string::npos)
        << vent.stdout_text();
}

INSTANTIATE_TEST_SUITE_P(Dispatch, HaltOnFailure, ::testing::Values("push", "credit"),
                         [](const auto& param_info) { return param_info.param; });

}  // namespace
}  // namespace zfarm::test
