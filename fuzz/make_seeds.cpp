// Writes the fuzzers' seed corpora: valid examples of what each target reads,
// one file each, into DIR/codec, DIR/exec_format and DIR/sink_results.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "zfarm/codec.hpp"
#include "zfarm/exec_format.hpp"

namespace {

void write(const std::filesystem::path& dir, int n, const std::string& bytes) {
    std::filesystem::create_directories(dir);
    std::ofstream(dir / ("seed-" + std::to_string(n)), std::ios::binary) << bytes;
}

}  // namespace

int main(int argc, char** argv) {
    using namespace zfarm;
    if (argc != 2) {
        std::fprintf(stderr, "usage: zfarm-fuzz-seeds DIR\n");
        return 2;
    }
    const std::filesystem::path dir = argv[1];
    const std::vector<proto::message> messages = {
        proto::job_open{"render", true, 3},
        proto::job_close{"render", 1000, false},
        proto::task{"render", 42, 2, "exec", exec::encode(exec::command{{"echo", "{}"}}), 30000},
        proto::result{"render", 42, 2, "node7-1-beef", proto::task_status::failed, 1234, "out",
                      "exit code 3", 1795770000123456, "exec"},
        proto::hello{"node7-1-beef", "node7", 1234, 8, "0.1.0"},
        proto::heartbeat{"node7-1-beef", 99, {{"render", 42, 2}}},
        proto::bye{"node7-1-beef", {{"render", 44, 1}}},
        proto::ack{"render", {0, 1, 2}, {7}, {1}},
        proto::lost{"node7-1-beef", {{"render", 43, 1}}},
        proto::done{"render", 1000, 998, 2, 4, 61000, 1},
        proto::stop{"render", "cancelled"},
        proto::credit{"node7-1-beef", 16, true},
        proto::recorded{"render", 10, {12}, false},
        proto::retry{"render", 42, 2, "exit code 3"},
        proto::report{"render",
                      1000,
                      61000,
                      1000,
                      118000000,
                      48000,
                      95000,
                      99000,
                      100000,
                      {{"node7-1-beef", "node7", 8, 998, 2, 998, 118000000, 1500000, 1, 1}}},
    };
    int n = 0;
    std::string stream;
    for (const auto& m : messages) {
        const std::string wire = proto::encode(m);
        write(dir / "codec", n++, wire);
        stream += static_cast<char>(wire.size() >> 8);
        stream += static_cast<char>(wire.size() & 0xff);
        stream += wire;
    }
    proto::batch_encoder batch;  // a BATCH of every message (5.15)
    for (const auto& m : messages)
        batch.add(m);
    write(dir / "codec", n++, std::string(batch.frame()));
    write(dir / "sink_results", 0, stream);
    write(dir / "exec_format", 0,
          exec::encode(exec::command{{"sh", "-c", "echo $X"}, {{"X", "1"}}, "/tmp"}));
    write(dir / "exec_format", 1,
          exec::encode(exec::outcome{3, 0, "out", "err", 5, 0, 1200, 2048, "node7", "sh -c x"}));
    return 0;
}
