"""The benchmark's plumbing: timing, the report, CPU pinning, the machine, the PING probe."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

VALUE = "x" * 1000  # a 1 KB str; raw paths store its pickle, already serialized
KEYS = [f"key:{n}" for n in range(1000)]


# -- results ----------------------------------------------------------------------------------


@dataclass
class Row:
    section: str
    name: str
    value: float
    unit: str = "ops/s"
    note: str = ""


@dataclass
class Goal:
    text: str
    ratio: float
    target: float
    higher_is_better: bool = True

    @property
    def met(self) -> bool:
        return self.ratio >= self.target if self.higher_is_better else self.ratio <= self.target


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, section: str, results: dict[str, float], unit: str = "ops/s") -> None:
        for name, value in results.items():
            self.rows.append(Row(section, name, value, unit))
            print(f"  {name:<44} {value:>12,.1f} {unit}", flush=True)

    def goal(self, text: str, ratio: float, target: float, higher: bool = True) -> None:
        goal = Goal(text, ratio, target, higher)
        self.goals.append(goal)
        sign = ">=" if higher else "<="
        print(
            f"  -> {text}: {ratio:.2f}x (goal {sign} {target}x) {'MET' if goal.met else 'MISSED'}"
        )

    def markdown(self, header: str) -> str:
        lines = [header, "", "| goal | ratio | target | |", "| --- | ---: | ---: | --- |"]
        for g in self.goals:
            sign = ">=" if g.higher_is_better else "<="
            lines.append(
                f"| {g.text} | {g.ratio:.2f}x | {sign} {g.target}x | {'met' if g.met else '**missed**'} |"
            )
        lines += ["", "| section | path | result |", "| --- | --- | ---: |"]
        for r in self.rows:
            value = f"{r.value:,.0f}" if r.value >= 100 else f"{r.value:,.2f}"
            lines.append(f"| {r.section} | {r.name} | {value} {r.unit} |")
        if self.notes:
            lines += ["", *[f"- {n}" for n in self.notes]]
        return "\n".join(lines) + "\n"


# -- timing -----------------------------------------------------------------------------------


def measure(paths: dict[str, Callable[[int], object]], n: int, rounds: int) -> dict[str, float]:
    """Median ops/s of each path; the paths take turns within every round."""
    samples: dict[str, list[float]] = {name: [] for name in paths}
    for path in paths.values():
        path(min(n, 200))  # warm up connections and caches
    for _ in range(rounds):
        for name, path in paths.items():
            started = time.perf_counter()
            path(n)
            samples[name].append(n / (time.perf_counter() - started))
    return {name: statistics.median(values) for name, values in samples.items()}


async def ameasure(
    paths: dict[str, Callable[[int], Awaitable[object]]], n: int, rounds: int
) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in paths}
    for path in paths.values():
        await path(min(n, 256))
    for _ in range(rounds):
        for name, path in paths.items():
            started = time.perf_counter()
            await path(n)
            samples[name].append(n / (time.perf_counter() - started))
    return {name: statistics.median(values) for name, values in samples.items()}


def loop_ops(op: Callable[[str], object]) -> Callable[[int], None]:
    def run(n: int) -> None:
        keys = KEYS
        for i in range(n):
            op(keys[i % 1000])

    return run


def task_ops(
    op: Callable[[str], Awaitable[object]], tasks: int
) -> Callable[[int], Awaitable[None]]:
    async def worker(start: int, count: int) -> None:
        keys = KEYS
        for i in range(start, start + count):
            await op(keys[i % 1000])

    async def run(n: int) -> None:
        per = max(1, n // tasks)
        await asyncio.gather(*(worker(t * per, per) for t in range(tasks)))

    return run


# -- the setup --------------------------------------------------------------------------------


def pin(pid: int, cpu: int | None) -> None:
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(pid, {cpu % (os.cpu_count() or 1)})


@dataclass
class Layout:
    """Which CPU the server, this process and the PING probe run on."""

    server: int | None
    client: int | None
    probe: int | None
    text: str


LAYOUTS = {
    "split": Layout(
        1, 0, 1, "redis-server on CPU 1, benchmark on CPU 0 (as with a separate server)"
    ),
    "same": Layout(0, 0, 1, "redis-server and benchmark on CPU 0 (strictest: no wake-up latency)"),
    "none": Layout(None, None, None, "no pinning (results flip with the scheduler)"),
}


def caches_for(url: str) -> dict[str, Any]:
    return {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "dr": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": f"{url}/1"},
        "dj": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": f"{url}/2"},
    }


def versions() -> dict[str, str]:
    found = {}
    for dist in ("Django", "django-redis", "redis", "hiredis", "aiocache", "cashews", "uvloop"):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = "not installed"
    return found


def machine(server_binary: str) -> list[str]:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    server = subprocess.run([server_binary, "--version"], capture_output=True, text=True).stdout
    return [
        f"{os.cpu_count()} CPUs ({cpu}), {platform.system()} {platform.release()}",
        f"Python {platform.python_version()}; "
        + ", ".join(f"{k} {v}" for k, v in versions().items()),
        f"{server.split(' sha=')[0].strip()} (private, loopback, no persistence)",
    ]


def ping_probe(host: str, port: int, cpu: int | None, stop: Any, out: Any) -> None:
    """In its own process: PING every millisecond until ``stop``; report the worst latency."""
    import redis

    pin(0, cpu)
    client = redis.Redis(host=host, port=port)
    client.ping()
    out.put("ready")
    worst, count = 0.0, 0
    while not stop.is_set():
        started = time.perf_counter()
        client.ping()
        worst = max(worst, time.perf_counter() - started)
        count += 1
        time.sleep(0.001)
    out.put((worst, count))
    client.close()


@contextlib.contextmanager
def probe(host: str, port: int, cpu: int | None) -> Iterator[dict[str, float]]:
    context = multiprocessing.get_context("spawn")
    stop, out = context.Event(), context.Queue()
    process = context.Process(target=ping_probe, args=(host, port, cpu, stop, out))
    process.start()
    assert out.get(timeout=30) == "ready"
    result: dict[str, float] = {}
    try:
        yield result
    finally:
        stop.set()
        worst, count = out.get(timeout=30)
        process.join(10)
        result.update(worst_ms=worst * 1000, pings=count)
