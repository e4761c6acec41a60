"""The database cache keeps counters, pops and indexes right across processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import DB_CACHE_TABLE, make_service, shared_database, unique_namespace

WORKERS = 4
ROUNDS = 40


def test_processes_lose_no_count_pop_once_and_file_each_entry_once() -> None:
    namespace = unique_namespace("xproc")
    service = make_service("db", namespace, default_ttl=300)
    for i in range(ROUNDS):
        service.set(f"token-{i}", i)
    env = {
        **os.environ,
        **shared_database(),
        "AGENTHUB_CACHE_TEST_TABLE": DB_CACHE_TABLE,
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
    }
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.db_worker", namespace, str(w), str(ROUNDS)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(WORKERS)
    ]
    outputs = [w.communicate(timeout=240) for w in workers]
    assert [w.returncode for w in workers] == [0] * WORKERS, [err for _, err in outputs]
    assert service.get("counter") == WORKERS * ROUNDS
    assert sum(int(out) for out, _ in outputs) == ROUNDS  # each token popped exactly once
    filed = {
        key: owner for owner in map(str, range(WORKERS)) for key in service.find("owner", owner)
    }
    assert sorted(filed) == [f"shared-{i}" for i in range(5)]
    for key, owner in filed.items():
        assert str(service.get(key)) == owner  # filed under exactly its last writer's value
    assert service.prune() >= 0
    service.clear()
