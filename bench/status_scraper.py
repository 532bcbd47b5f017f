#!/usr/bin/env python3
"""The monitor of scripts/bench.sh's "observed" throughput runs.

Reads the sink's status endpoint from the sink's log (its line "http:
listening on URL", waited for up to 10 s), then scrapes it once a second
as a dashboard or a Prometheus server would: GET /metrics and GET /status,
each checked (/metrics: Prometheus text with zfarm's task counter and the
sink's uptime; /status: a JSON object with its jobs and workers). After
each scrape it replaces --out with one line, "SCRAPES FAILED", so the
counts can be read whenever it is stopped (SIGTERM); each failure's reason
goes to stderr.

A scrape that fails once the sink's log says "sink leaving" is not counted:
it is the end of the run (the sink closes its endpoint as it exits), and
the scraper exits 0. Exit 1: no endpoint in the log.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import urllib.request

LISTENING = re.compile(r"http: listening on (http://\S+/)")


def endpoint(sink_log: str, seconds: float) -> str | None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with open(sink_log, encoding="utf-8", errors="replace") as f:
                found = LISTENING.search(f.read())
        except FileNotFoundError:
            found = None
        if found:
            return found.group(1)
        time.sleep(0.05)
    return None


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as reply:
        if reply.status != 200:
            raise ValueError(f"HTTP {reply.status}")
        return reply.read().decode("utf-8")


def scrape(base: str) -> None:
    """Raises with the reason when either answer is missing or wrong."""
    metrics = get(base + "metrics")
    for needed in ("# TYPE zfarm_tasks_total counter\n", "\nzfarm_sink_uptime_seconds "):
        if needed not in metrics:
            raise ValueError(f"/metrics has no {needed.strip()!r}")
    status = json.loads(get(base + "status"))
    if not isinstance(status, dict) or not isinstance(status.get("jobs"), list) \
            or not isinstance(status.get("workers"), list):
        raise ValueError("/status is not an object with jobs and workers")


def leaving(sink_log: str) -> bool:
    with open(sink_log, encoding="utf-8", errors="replace") as f:
        return "sink leaving" in f.read()


def write_counts(path: str, scrapes: int, failed: int) -> None:
    # Replaced whole, so a reader never sees half a line.
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(f"{scrapes} {failed}\n")
    os.replace(path + ".tmp", path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sink-log", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args()
    if args.interval <= 0:
        parser.error("--interval must be more than 0")

    base = endpoint(args.sink_log, 10)
    if base is None:
        print(f"status_scraper.py: no 'http: listening on' line in {args.sink_log}",
              file=sys.stderr)
        return 1
    scrapes = failed = 0
    due = time.monotonic()
    while True:
        try:
            scrape(base)
        except (OSError, ValueError) as e:  # URLError and JSONDecodeError among them
            if leaving(args.sink_log):
                return 0
            failed += 1
            print(f"status_scraper.py: {base}: {e}", file=sys.stderr)
        scrapes += 1
        write_counts(args.out, scrapes, failed)
        # On a fixed schedule: a slow answer does not push the next one back.
        due += args.interval
        time.sleep(max(0.0, due - time.monotonic()))


if __name__ == "__main__":
    sys.exit(main())
