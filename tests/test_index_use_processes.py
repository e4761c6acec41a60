"""A namespace's first indexed write waits out every process's trust in "never indexed".

A write without indexes in a namespace that was never indexed skips "is this key filed?", on
the strength of a reading this process trusts for up to ``TRUST_SECONDS``
(``providers/index_use.py``). Were another process to file a key within that time, this
process's next re-set of the key without indexes would leave it filed with an unindexed value,
and an index read would return that value. So the first indexed write files nothing until
every such reading has run out. Two real processes on real stores: one (the worker) re-sets
``K`` without indexes again and again, trusting the reading; this one makes the namespace's
first indexed write of ``K``, then has the worker set ``K`` once more. Afterwards ``K``'s
value and its filing must agree. Without the wait the worker still trusts its reading at that
last set and skips the check (every round, but for the rare one where its reading ran out
just then), so the index returns the unindexed value.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from agenthub_cache import CacheService
from agenthub_cache.providers import index_use
from tests.conftest import make_service, shared_database, unique_namespace

ROUNDS = 3


class Worker:
    """``tests.index_use_worker`` in a process of its own, one command at a time."""

    def __init__(self, alias: str, stores: dict[str, Any]) -> None:
        env = {
            **os.environ,
            **shared_database(),
            "AGENTHUB_CACHE_TEST_CACHE": json.dumps(stores[alias]),
            "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.index_use_worker", alias],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def _pipe(self, name: str) -> IO[str]:
        pipe: IO[str] | None = getattr(self.process, name)
        assert pipe is not None
        return pipe

    def send(self, command: str) -> None:
        self._pipe("stdin").write(command + "\n")
        self._pipe("stdin").flush()

    def answer(self) -> list[str]:
        line = self._pipe("stdout").readline()
        assert line, "the worker exited"
        return line.split()

    def close(self) -> str:
        self._pipe("stdin").close()  # the worker's end of input: it exits
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()  # stuck (a failed round): its error is in stderr
            self.process.wait()
        errors = self._pipe("stderr").read()
        self._pipe("stdout").close()
        self._pipe("stderr").close()
        assert self.process.returncode == 0, errors
        return errors


@pytest.fixture(params=["memcached", "db"])
def worker(request: pytest.FixtureRequest, stores: dict[str, Any]) -> Iterator[tuple[str, Worker]]:
    alias: str = request.param
    if alias not in stores:
        pytest.skip("memcached is not installed (apt-get install memcached)")
    started = Worker(alias, stores)
    try:
        yield alias, started
    finally:
        started.close()


def unindexed_for_a_while(service: CacheService) -> None:
    """The namespace's record: a NEVER written long ago, as in a namespace used without
    indexes for more than ``GRACE_SECONDS``, so that every process trusts it at once."""
    provider: Any = service.provider
    scope = provider.scope()
    long_ago = time.time() - 10 * index_use.GRACE_SECONDS
    provider.backend.set(provider.index_use_key(scope), index_use.new_record(long_ago), None)
    provider.forget_index_use()


def test_a_first_indexed_write_waits_until_no_process_skips_its_check(
    worker: tuple[str, Worker], tmp_path: Path
) -> None:
    alias, other = worker
    wrong: list[str] = []
    trusting: list[int] = []
    for i in range(ROUNDS):
        namespace = unique_namespace("used")
        service = make_service(alias, namespace)
        service.set("warm", 1)
        unindexed_for_a_while(service)
        stopfile = tmp_path / f"stop-{i}"
        other.send(f"run {namespace} {stopfile}")
        try:
            assert other.answer() == ["ready", "True"]  # it skips the check, trusting "never"
            assert service.set("K", "filed", indexes={"g": "v"})  # the namespace's first
        finally:
            stopfile.touch()  # the worker's next set is its last: it starts after the filing
        assert other.answer()[0] == "done"
        value = service.get("K")
        filed = service.get_by_index("g", "v")
        if filed != ({"K": value} if value == "filed" else {}):
            wrong.append(f"round {i}: value {value!r}, filed {filed!r}")
        other.send(f"trusts {namespace}")
        if other.answer() != ["False"]:  # it checks again: the wait outlasted its trust
            trusting.append(i)
        service.clear()
    assert wrong == [], f"{len(wrong)} of {ROUNDS} rounds: {wrong}"
    assert trusting == [], f"the worker still skipped its check after rounds {trusting}"
