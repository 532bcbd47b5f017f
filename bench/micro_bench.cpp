// Micro-benchmarks (Google Benchmark) of the per-task work of each component:
// the codec (encode and decode of every message kind that flows per task),
// the ventilator's ledger, the sink's dedupe set and its result writer, and
// the worker's start of a command.
//
//   build-bench/bin/zfarm-micro-bench --benchmark_min_time=0.2
#include <benchmark/benchmark.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <string>

#include "child_process.hpp"
#include "ledger.hpp"
#include "result_writer.hpp"
#include "zfarm/codec.hpp"
#include "zfarm/dedupe_set.hpp"
#include "zfarm/exec_format.hpp"

extern char** environ;

namespace {

using namespace zfarm;

proto::task sample_task(std::size_t size) {
    return proto::task{"bench-job", 123456, 1, "echo", std::string(size, 'x'), 0};
}
proto::result sample_result(std::size_t size) {
    return proto::result{"bench-job",
                         123456,
                         1,
                         "node7-1234-beef",
                         proto::task_status::ok,
                         250,
                         std::string(size, 'x'),
                         "",
                         1795770000123456,
                         "echo"};
}
proto::ack sample_ack(std::size_t ids) {
    proto::ack a{"bench-job", {}, {}};
    for (std::size_t i = 0; i < ids; ++i)
        a.ids.push_back(1000000 + i);
    return a;
}

template <class Msg>
void encode_bench(benchmark::State& state, const Msg& msg) {
    const proto::message m{msg};
    std::string out;
    for (auto _ : state) {
        proto::encode(m, out);
        benchmark::DoNotOptimize(out.data());
    }
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(out.size()));
}
template <class Msg>
void decode_bench(benchmark::State& state, const Msg& msg) {
    const std::string wire = proto::encode(proto::message{msg});
    for (auto _ : state) {
        auto d = proto::decode(wire);
        benchmark::DoNotOptimize(d);
    }
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(wire.size()));
}

void BM_EncodeTask(benchmark::State& s) {
    encode_bench(s, sample_task(static_cast<std::size_t>(s.range(0))));
}
void BM_DecodeTask(benchmark::State& s) {
    decode_bench(s, sample_task(static_cast<std::size_t>(s.range(0))));
}
void BM_EncodeResult(benchmark::State& s) {
    encode_bench(s, sample_result(static_cast<std::size_t>(s.range(0))));
}
void BM_DecodeResult(benchmark::State& s) {
    decode_bench(s, sample_result(static_cast<std::size_t>(s.range(0))));
}
void BM_EncodeAck(benchmark::State& s) {
    encode_bench(s, sample_ack(static_cast<std::size_t>(s.range(0))));
}
void BM_DecodeAck(benchmark::State& s) {
    decode_bench(s, sample_ack(static_cast<std::size_t>(s.range(0))));
}
void BM_EncodeHeartbeat(benchmark::State& s) {
    encode_bench(s, proto::heartbeat{"node7-1234-beef", 99, {{"bench-job", 42, 1}}});
}
void BM_DecodeCredit(benchmark::State& s) {
    decode_bench(s, proto::credit{"node7-1234-beef", 16, false});
}
// The sink's read of one BATCH of `n` RESULTs (32-byte outputs), into the
// same decoded_frame each time, as the sink does; items are RESULTs.
void BM_DecodeFrameResultBatch(benchmark::State& state) {
    const auto n = static_cast<std::uint64_t>(state.range(0));
    proto::batch_encoder b;
    for (std::uint64_t i = 0; i < n; ++i) {
        auto r = sample_result(32);
        r.id += i;
        b.add(r);
    }
    const std::string frame(b.frame());
    proto::decoded_frame out;
    for (auto _ : state) {
        proto::decode_frame(frame, out);
        benchmark::DoNotOptimize(out.begin());
    }
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(n));
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(frame.size()));
}
// The same, with frames of varying sizes as a sink gets them: a BATCH of
// `n` RESULTs, then one of 8, in turn. decode_frame() keeps the slots beyond
// the small frame, so the large one decodes into strings that have room.
void BM_DecodeFrameVaryingBatches(benchmark::State& state) {
    const auto n = static_cast<std::uint64_t>(state.range(0));
    std::string frames[2];
    for (std::uint64_t k = 0; k < 2; ++k) {
        proto::batch_encoder b;
        for (std::uint64_t i = 0; i < (k == 0 ? n : 8); ++i) {
            auto r = sample_result(32);
            r.id += i;
            b.add(r);
        }
        frames[k] = std::string(b.frame());
    }
    proto::decoded_frame out;
    for (auto _ : state) {
        for (const auto& frame : frames)
            proto::decode_frame(frame, out);
        benchmark::DoNotOptimize(out.begin());
    }
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(n + 8));
}
BENCHMARK(BM_EncodeTask)->Arg(32)->Arg(4096);
BENCHMARK(BM_DecodeTask)->Arg(32)->Arg(4096);
BENCHMARK(BM_EncodeResult)->Arg(32)->Arg(4096);
BENCHMARK(BM_DecodeResult)->Arg(32)->Arg(4096);
BENCHMARK(BM_EncodeAck)->Arg(1)->Arg(4096);
BENCHMARK(BM_DecodeAck)->Arg(1)->Arg(4096);
BENCHMARK(BM_EncodeHeartbeat);
BENCHMARK(BM_DecodeCredit);
BENCHMARK(BM_DecodeFrameResultBatch)->Arg(256);
BENCHMARK(BM_DecodeFrameVaryingBatches)->Arg(256);

// The ledger's life of one task in steady state: add, then acknowledge,
// with `window` tasks in flight.
void BM_LedgerAddAcknowledge(benchmark::State& state) {
    const auto window = static_cast<std::size_t>(state.range(0));
    ventilator::ledger l(window);
    ventilator::ledger_entry entry;
    entry.kind = "echo";
    entry.payload = std::string(32, 'x');
    std::uint64_t next = 0;
    for (; next < window - 1; ++next)
        l.add(next) = entry;
    std::uint64_t oldest = 0;
    for (auto _ : state) {
        l.add(next++) = entry;
        benchmark::DoNotOptimize(l.acknowledge(oldest++));
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_LedgerAddAcknowledge)->Arg(1000)->Arg(100000);

// The sink's dedupe set: ids arriving in order, and interleaved from two
// streams (as from two workers) `spread` ids apart.
void BM_DedupeInsertInOrder(benchmark::State& state) {
    dedupe_set d;
    std::uint64_t id = 0;
    for (auto _ : state)
        benchmark::DoNotOptimize(d.insert(id++));
    state.SetItemsProcessed(state.iterations());
}
void BM_DedupeInsertInterleaved(benchmark::State& state) {
    const auto spread = static_cast<std::uint64_t>(state.range(0));
    dedupe_set d;
    std::uint64_t i = 0;
    for (auto _ : state) {
        const std::uint64_t id = (i % 2) ? i / 2 : i / 2 + spread;
        benchmark::DoNotOptimize(d.insert(id));
        ++i;
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DedupeInsertInOrder);
BENCHMARK(BM_DedupeInsertInterleaved)->Arg(64)->Arg(100000);

// One JSON line per result, written to /dev/null through the sink's writer:
// an echo result, its output `size` bytes of text; the same with an output
// that is not UTF-8 (written in base64); and an exec result with `size`
// bytes of stdout, its outcome decoded beforehand as the sink's recorder
// does.
void write_lines(benchmark::State& state, const proto::result& r, const exec::outcome* o) {
    auto w = sink::result_writer::open("/dev/null");
    if (!w) {
        state.SkipWithError(w.error().c_str());
        return;
    }
    std::int64_t n = 0;
    for (auto _ : state) {
        w->write(r, o);
        if (++n % 4096 == 0) w->flush();
    }
    w->flush();
    state.SetItemsProcessed(state.iterations());
}
void BM_ResultWriterWrite(benchmark::State& state) {
    write_lines(state, sample_result(static_cast<std::size_t>(state.range(0))), nullptr);
}
void BM_ResultWriterWriteBinary(benchmark::State& state) {
    auto r = sample_result(static_cast<std::size_t>(state.range(0)));
    for (std::size_t i = 0; i < r.output.size(); ++i)
        r.output[i] = static_cast<char>(0x80 + i % 0x80);
    write_lines(state, r, nullptr);
}
void BM_ResultWriterWriteExec(benchmark::State& state) {
    exec::outcome o;
    o.exit_code = 0;
    o.out = std::string(static_cast<std::size_t>(state.range(0)) - 1, 'x') + '\n';
    o.rss_kb = 2048;
    o.host = "node7";
    o.cmd = "echo xxxxxxxx";
    auto r = sample_result(0);
    r.kind = exec::k_kind;
    r.output = exec::encode(o);
    write_lines(state, r, &o);
}
BENCHMARK(BM_ResultWriterWrite)->Arg(32)->Arg(4096);
BENCHMARK(BM_ResultWriterWriteBinary)->Arg(32);
BENCHMARK(BM_ResultWriterWriteExec)->Arg(32);

// Starting and reaping one `true`, one after another: the worker's
// run_command (posix_spawnp in a process group of its own, stdout and
// stderr through pipes read as they come, a pidfd polled for the end),
// against the least a program can do (bare posix_spawnp, then waitpid) and
// what xargs does (fork, then execvp in the child). The time is the
// command's, start to reaped; the CPU time is this process's side alone
// (the children's is not counted), what the spawning thread spends.
void BM_SpawnTrueRunCommand(benchmark::State& state) {
    exec::command c;
    c.argv = {"true"};
    detail::run_options o;
    o.max_output = 1 << 20;
    for (auto _ : state) {
        const auto r = detail::run_command(c, o);
        if (r.spawn_error || r.outcome.exit_code != 0) {
            state.SkipWithError("true did not run");
            return;
        }
    }
}
bool reaped_ok(pid_t pid) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return false;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}
void BM_SpawnTruePosixSpawnp(benchmark::State& state) {
    char arg0[] = "true";
    char* argv[] = {arg0, nullptr};
    for (auto _ : state) {
        pid_t pid = -1;
        if (::posix_spawnp(&pid, "true", nullptr, nullptr, argv, environ) != 0 || !reaped_ok(pid)) {
            state.SkipWithError("true did not run");
            return;
        }
    }
}
void BM_SpawnTrueForkExec(benchmark::State& state) {
    char arg0[] = "true";
    char* argv[] = {arg0, nullptr};
    for (auto _ : state) {
        const pid_t pid = ::fork();
        if (pid == 0) {
            ::execvp("true", argv);
            ::_exit(127);
        }
        if (pid < 0 || !reaped_ok(pid)) {
            state.SkipWithError("true did not run");
            return;
        }
    }
}
BENCHMARK(BM_SpawnTrueRunCommand)->UseRealTime();
BENCHMARK(BM_SpawnTruePosixSpawnp)->UseRealTime();
BENCHMARK(BM_SpawnTrueForkExec)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
