"""Helpers of the ``cache_namespaces`` tests: run it in-process or as a real subprocess (on a
pipe, with stdin closed, or on a pseudo-terminal), declare test namespaces, dump whole stores."""

from __future__ import annotations

import io
import json
import os
import pty
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.core.management import call_command
from django.db import connection
from django.test.utils import override_settings

from agenthub_cache import metrics_redis
from tests.conftest import shared_database

ROOT = Path(__file__).resolve().parent.parent
#: Stores a subprocess shares with the test process (LocMem is private to each process).
SHARED = ["db", "redis"]


@dataclass
class Result:
    status: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def run(*args: Any, **options: Any) -> Result:
    """``call_command("cache_namespaces", *args, **options)``: stdout and stderr captured."""
    out, err = io.StringIO(), io.StringIO()
    call_command("cache_namespaces", *args, stdout=out, stderr=err, **options)
    return Result(0, out.getvalue(), err.getvalue())


@contextmanager
def declared(namespaces: Mapping[str, Mapping[str, Any]], cache: str = "db") -> Iterator[None]:
    """``override_settings(AGENTHUB_CACHE=...)`` with exactly these namespaces."""
    with override_settings(AGENTHUB_CACHE={"CACHE": cache, "NAMESPACES": dict(namespaces)}):
        yield


def environment() -> dict[str, str]:
    """What a subprocess needs to reach this process's stores and namespaces."""
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PYTHONWARNINGS": "error",
        "DJANGO_SETTINGS_MODULE": "tests.command_settings",
        **shared_database(),
        "AGENTHUB_CACHE_TEST_CACHES": json.dumps(settings.CACHES),
        "AGENTHUB_CACHE_TEST_NAMESPACES": json.dumps(settings.AGENTHUB_CACHE),
        "COLUMNS": "100",
    }


def argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "django", "cache_namespaces", *args]


def cli(*args: str, stdin: Any = subprocess.DEVNULL, timeout: float = 60) -> Result:
    """``python -m django cache_namespaces ...`` in a subprocess, stdin not a terminal."""
    done = subprocess.run(
        argv(*args),
        stdin=stdin,
        capture_output=True,
        text=True,
        env=environment(),
        cwd=ROOT,
        timeout=timeout,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def cli_stdin_closed(*args: str) -> Result:
    """The command with file descriptor 0 closed altogether (``sys.stdin`` is then None)."""
    command = " ".join(_quote(a) for a in argv(*args)) + " 0<&-"
    done = subprocess.run(
        ["/bin/sh", "-c", command],
        capture_output=True,
        text=True,
        env=environment(),
        cwd=ROOT,
        timeout=60,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def _quote(arg: str) -> str:
    return "'" + arg.replace("'", "'\"'\"'") + "'"


def cli_on_terminal(*args: str, typed: str) -> Result:
    """The command with stdin on a pseudo-terminal, on which ``typed`` is typed ahead."""
    master, slave = pty.openpty()
    try:
        process = subprocess.Popen(
            argv(*args),
            stdin=slave,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment(),
            cwd=ROOT,
        )
        os.close(slave)
        os.write(master, typed.encode())
        out, err = process.communicate(timeout=60)
    finally:
        os.close(master)
    return Result(process.returncode, out, err)


def cli_stderr_on_terminal(*args: str) -> Result:
    """The command with stderr on a pseudo-terminal (what an operator watching it sees)."""
    master, slave = pty.openpty()
    seen: list[bytes] = []

    def read() -> None:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every copy of the terminal's other end is closed
                return
            if not chunk:
                return
            seen.append(chunk)

    reader = threading.Thread(target=read)
    try:
        process = subprocess.Popen(
            argv(*args),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=slave,
            text=True,
            env=environment(),
            cwd=ROOT,
        )
        os.close(slave)
        reader.start()
        out, _ = process.communicate(timeout=120)
        reader.join(10)
    finally:
        os.close(master)
    return Result(process.returncode, out, b"".join(seen).decode())


# -- whole-store dumps: what "changes nothing" is checked against -------------------------------


def dump(alias: str) -> dict[Any, Any]:
    """Every key of the store behind ``alias`` with its stored bytes (not just our namespaces).

    This process's metrics pusher sends what it still holds first: its daemon thread writes a
    ``METRICS: "redis"`` namespace's totals hash (``HINCRBY``) up to ``PUSH_INTERVAL`` seconds
    after the counted calls, so the calls of an earlier test (a ``clear()`` after its last push)
    would otherwise land in this database between a test's dump before and its dump after.
    ``push()`` waits for a push under way, and afterwards the thread has nothing to send."""
    metrics_redis.push()
    backend = caches[alias]
    if alias == "locmem":
        with backend._lock:  # type: ignore[attr-defined]
            return {
                key: (value, backend._expire_info.get(key))  # type: ignore[attr-defined]
                for key, value in backend._cache.items()  # type: ignore[attr-defined]
            }
    if alias == "db":
        table = connection.ops.quote_name(settings.CACHES["db"]["LOCATION"])
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT cache_key, value, expires FROM {table}")
            return {key: (value, expires) for key, value, expires in cursor.fetchall()}
    if alias in ("redis", "redis_django"):
        client = redis_client(alias)
        try:
            return {key: (client.dump(key), client.ttl(key) > 0) for key in client.scan_iter()}
        finally:
            client.close()
    raise ValueError(f"no dump for {alias}")


def redis_client(alias: str) -> Any:
    import redis

    return redis.Redis.from_url(settings.CACHES[alias]["LOCATION"])
