#!/usr/bin/env python3
"""Baseline (c) of scripts/bench.sh: the seed's washer and dryers.

The washer puts N dishes on a multiprocessing.JoinableQueue; W dryer
processes take each one, "dry" it (echo: hand its bytes on to a results
queue) and call task_done(); the washer joins the queue. This is the
textbook's JoinableQueue pipeline, the in-one-machine ancestor of zfarm.

Prints libzmq perf-style lines; the clock starts when the first dish is put
and stops when the washer's join() returns and every result is collected.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time


def dryer(dishes, dried) -> None:
    while True:
        dish = dishes.get()
        dried.put(dish)
        dishes.task_done()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--size", type=int, default=32)
    args = parser.parse_args()
    if args.count < 1 or args.workers < 1 or args.size < 0:
        parser.error("--count and --workers must be 1 or more")

    ctx = mp.get_context("fork")
    dishes, dried = ctx.JoinableQueue(), ctx.Queue()
    dryers = [ctx.Process(target=dryer, args=(dishes, dried), daemon=True)
              for _ in range(args.workers)]
    for d in dryers:
        d.start()
    payload = b"x" * args.size
    start = time.perf_counter()
    for _ in range(args.count):
        dishes.put(payload)
    for _ in range(args.count):
        dried.get()
    dishes.join()
    seconds = time.perf_counter() - start
    for d in dryers:
        d.kill()
    print(f"workers: {args.workers}")
    print(f"message_size: {args.size} [B]")
    print(f"message_count: {args.count}")
    print(f"seconds: {seconds:.3f}")
    print(f"throughput: {args.count / seconds:.0f} [msg/s]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
