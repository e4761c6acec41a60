"""A process that only writes sees another process's flush within ``GENERATION_MAX_AGE``.

On the stores flushed by a namespace generation (memcached, the file cache) a write goes under
the generation the process last saw. Reads check it with every value; a process that only wrote
kept writing under the generation a flush elsewhere had retired, forever: ``set`` returned True
and nobody could ever read what it wrote. Two real processes on real stores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from agenthub_cache.providers.generations import GENERATION_MAX_AGE
from tests.conftest import make_service, shared_database, unique_namespace


@pytest.mark.parametrize("alias", ["memcached", "files"])
def test_a_write_only_process_writes_under_the_new_generation_after_a_flush(
    alias: str, stores: dict[str, Any]
) -> None:
    if alias not in stores:
        pytest.skip("memcached is not installed (apt-get install memcached)")
    namespace = unique_namespace("writer")
    env = {
        **os.environ,
        **shared_database(),
        "AGENTHUB_CACHE_TEST_CACHE": json.dumps(stores[alias]),
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
    }
    writer = subprocess.Popen(
        [sys.executable, "-m", "tests.write_only_worker", namespace, alias],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stdin, stdout, stderr = writer.stdin, writer.stdout, writer.stderr
    assert stdin is not None
    assert stdout is not None
    assert stderr is not None

    def writer_sets(key: str, value: str) -> str:
        stdin.write(f"set {key} {value}\n")
        stdin.flush()
        return stdout.readline().strip()

    try:
        assert writer_sets("k", "before") == "True"
        flusher = make_service(alias, namespace)  # this process: reads, then flushes
        assert flusher.get("k") == "before"
        flusher.clear()
        assert flusher.get("k") is None
        time.sleep(GENERATION_MAX_AGE + 0.2)  # the bound the writer trusts its generation for
        assert writer_sets("k", "after") == "True"
        assert make_service(alias, namespace).get("k") == "after"  # a fresh reader sees it
    finally:
        stdin.close()  # the worker's end of input: it exits
        writer.wait(timeout=60)
        errors = stderr.read()
        stdout.close()
        stderr.close()
    assert writer.returncode == 0, errors
