#!/usr/bin/env python3
"""Baseline (b) of scripts/bench.sh: the ZeroMQ Guide's pipeline.

taskvent PUSHes N tasks to W taskwork processes (PULL), each sends its
task back as a result to tasksink (PULL) -- the Guide's taskvent.py,
taskwork.py and tasksink.py with the sleep replaced by an echo, in
Debian's python3-zmq. No encoding, no bookkeeping, nothing written: the
shape of zfarm's pipeline with none of its guarantees.

Prints libzmq perf-style lines; the clock starts at the sink's first result
and stops at its last.

With --sleep-file FILE it runs the Guide's own workload instead: one task
per line of FILE, a number of milliseconds each worker sleeps (taskwork.py),
sent round-robin by PUSH as the Guide does, and prints the makespan: from
the first task sent to the last result received (the workers are given half
a second to connect first, the Guide's "press Enter when the workers are
ready").
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time

import zmq


def taskwork(tasks: str, results: str, sleeps: bool) -> None:
    ctx = zmq.Context()
    receiver = ctx.socket(zmq.PULL)
    receiver.connect(tasks)
    sender = ctx.socket(zmq.PUSH)
    sender.connect(results)
    while True:
        task = receiver.recv()
        if sleeps:
            time.sleep(int(task) / 1000.0)
        sender.send(task)


def tasksink(results: str, count: int, ready, out) -> None:
    ctx = zmq.Context()
    receiver = ctx.socket(zmq.PULL)
    receiver.bind(results)
    ready.set()
    receiver.recv()
    start = time.perf_counter()
    for _ in range(count - 1):
        receiver.recv()
    end = time.perf_counter()
    out.put((start, end))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--transport", choices=("tcp", "ipc"), default="tcp")
    parser.add_argument("--sleep-file", help="milliseconds to sleep, one task per line")
    args = parser.parse_args()
    sleeps: list[bytes] = []
    if args.sleep_file:
        with open(args.sleep_file, encoding="ascii") as f:
            sleeps = [line.strip().encode() for line in f if line.strip()]
        args.count = len(sleeps)
    if args.count < 2 or args.workers < 1 or args.size < 0:
        parser.error("--count must be 2 or more, --workers 1 or more")

    if args.transport == "tcp":
        probe = zmq.Context.instance().socket(zmq.PUSH)
        tasks = f"tcp://127.0.0.1:{probe.bind_to_random_port('tcp://127.0.0.1')}"
        results_port = probe.bind_to_random_port("tcp://127.0.0.1")
        probe.close(linger=0)
        zmq.Context.instance().term()
        results = f"tcp://127.0.0.1:{results_port}"
    else:
        base = f"ipc:///tmp/zfarm-bench-guide-{mp.current_process().pid}"
        tasks, results = base + "-tasks", base + "-results"

    ctx = mp.get_context("fork")
    ready, out = ctx.Event(), ctx.Queue()
    sink = ctx.Process(target=tasksink, args=(results, args.count, ready, out), daemon=True)
    sink.start()
    ready.wait()
    workers = [
        ctx.Process(target=taskwork, args=(tasks, results, bool(sleeps)), daemon=True)
        for _ in range(args.workers)
    ]
    for w in workers:
        w.start()

    zctx = zmq.Context()
    sender = zctx.socket(zmq.PUSH)
    sender.bind(tasks)
    if sleeps:
        time.sleep(0.5)  # the workers connect: the Guide's "press Enter"
        first_sent = time.perf_counter()
        for task in sleeps:
            sender.send(task)
    else:
        payload = b"x" * args.size
        for _ in range(args.count):
            sender.send(payload)
    first, last = out.get()
    seconds = last - first
    for w in workers:
        w.kill()
    sink.join()
    sender.close(linger=0)
    zctx.term()
    print(f"transport: {args.transport}")
    print(f"workers: {args.workers}")
    if sleeps:
        print(f"tasks: {len(sleeps)}")
        print(f"makespan: {last - first_sent:.3f} [s]")
        return 0
    print(f"message_size: {args.size} [B]")
    print(f"message_count: {args.count}")
    print(f"seconds: {seconds:.3f}")
    print(f"throughput: {(args.count - 1) / seconds:.0f} [msg/s]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
