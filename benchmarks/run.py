"""Benchmark the Redis provider against its peers, side by side, in one process.

    python -m benchmarks.run            # full: a few minutes, 1,000,000-key flush
    python -m benchmarks.run --quick    # about a minute, 100,000-key flush
    python -m benchmarks.run --write benchmarks/RESULTS.md

Starts its own redis-server on a free loopback port (never the one on 6379) and prints a
Markdown table of ops/s and ratios against the goals of issue 3. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
sys.path.insert(0, os.getcwd())

from benchmarks.async_ops import async_section
from benchmarks.flush import flush
from benchmarks.harness import LAYOUTS, Report, caches_for, machine, pin
from benchmarks.sync_ops import batches, index_read, indexed_set, single_ops


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, 100,000-key flush")
    parser.add_argument("--cpus", choices=sorted(LAYOUTS), default="split")
    parser.add_argument("--flush-keys", type=int, default=None)
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=["single", "batch", "indexed", "async", "index", "flush", "backends"],
        help="leave a section out (repeatable)",
    )
    parser.add_argument("--write", metavar="PATH", help="also write the Markdown report here")
    args = parser.parse_args(argv)
    import django
    import redis
    from django.test.utils import override_settings

    from tests import servers

    layout = LAYOUTS[args.cpus]
    n, rounds = (2000, 3) if args.quick else (4000, 7)
    flush_keys = args.flush_keys or (100_000 if args.quick else 1_000_000)
    server = servers.redis_server().start()
    assert server.process is not None
    pin(server.process.pid, layout.server)
    pin(0, layout.client)
    load_before = os.getloadavg()
    report = Report()
    report.notes.append(f"CPU layout: {layout.text}.")
    try:
        django.setup()
        with override_settings(CACHES=caches_for(server.url)):
            from django.core.cache import caches

            from agenthub_cache import CacheService

            env: dict[str, Any] = {
                "host": server.host,
                "port": server.port,
                "raw": redis.Redis(host=server.host, port=server.port, db=3),
                "raw1": redis.Redis(host=server.host, port=server.port, db=1),
                "dr": caches["dr"],
                "dj": caches["dj"],
                "ns_dr": CacheService("bench", default_ttl=600, cache="dr"),
                "ns_dj": CacheService("bench", default_ttl=600, cache="dj"),
                "ns_dr_off": CacheService("bench-off", default_ttl=600, cache="dr", metrics=False),
            }
            started = time.monotonic()
            if "single" not in args.skip:
                single_ops(report, env, n, rounds)
            if "batch" not in args.skip:
                batches(report, env, n, rounds)
            if "indexed" not in args.skip:
                indexed_set(report, env, n, rounds)
            if "async" not in args.skip:
                asyncio.run(async_section(report, env, "asyncio", n, rounds))
                try:
                    import uvloop
                except ImportError:
                    report.notes.append("uvloop not installed: its async rows are missing.")
                else:
                    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                        runner.run(async_section(report, env, "uvloop", n, rounds))
            if "index" not in args.skip:
                index_read(report, env, rounds)
            if "flush" not in args.skip:
                pin(
                    server.process.pid,
                    LAYOUTS["split"].server if layout.server is not None else None,
                )
                flush(
                    report,
                    env,
                    flush_keys,
                    LAYOUTS["split"] if layout.server is not None else layout,
                )
            elapsed = time.monotonic() - started
    finally:
        server.stop()
    if "backends" not in args.skip:  # the non-Redis backends, in a process of their own
        from benchmarks.backends import merge_into

        merge_into(report, quick=args.quick)
    load_after = os.getloadavg()
    report.notes.append(
        f"Load average (1 min) {load_before[0]:.2f} before, {load_after[0]:.2f} after; "
        f"{elapsed:.0f} s; {rounds} rounds of {n} ops per path, median reported."
    )
    header = "\n".join(
        [
            f"## {'Quick' if args.quick else 'Full'} run, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
            "",
            *[f"- {line}" for line in machine(server.argv[0])],
            f"- Command: `python -m benchmarks.run {' '.join(argv if argv is not None else sys.argv[1:])}`",
        ]
    )
    text = report.markdown(header)
    print("\n" + text)
    if args.write:
        with open(args.write, "w") as out:
            out.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
