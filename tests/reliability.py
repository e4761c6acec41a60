"""Figures of the reliability suite, its two profiles, and the command that runs the full one.

Every reliability test adds what it did and what it saw to the figures (``record``): operations
run, faults injected and survived, hostile inputs tried, and the things that must stay 0 —
mismatched replies, lost writes, index violations, canaries touched, calls over their bound.
The figures go to a JSON-lines file named by ``AGENTHUB_CACHE_FIGURES_FILE`` (set by this
module as a pytest plugin, so xdist workers write to the same file) and pytest prints their
sum at the end of the run.

Each long test runs in two profiles: ``short`` in the default run (and CI), ``full`` behind
the ``slow`` marker. ``AGENTHUB_CACHE_SOAK_SECONDS`` sets how long the load and fault loops
run: 3 s by default in the short profile, 30 s in the full one.

The full run, with a summary to paste into ``docs/reliability.md``::

    python -m tests.reliability            # = AGENTHUB_CACHE_SOAK_SECONDS=30 pytest -m slow
    python -m tests.reliability -x -k load # extra arguments go to pytest
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

SOAK_ENV = "AGENTHUB_CACHE_SOAK_SECONDS"
FIGURES_ENV = "AGENTHUB_CACHE_FIGURES_FILE"

#: Figures in the order the summary prints them; the ``MUST_BE_ZERO`` ones fail the run.
FIGURES = (
    "operations",
    "faults_injected",
    "faults_survived",
    "hostile_inputs",
    "mismatched_replies",
    "lost_writes",
    "index_violations",
    "canaries_touched",
    "calls_over_bound",
)
MUST_BE_ZERO = (
    "mismatched_replies",
    "lost_writes",
    "index_violations",
    "canaries_touched",
    "calls_over_bound",
)


# -- profiles ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    """How hard one run pushes: the short one in every test run, the full one behind ``slow``."""

    name: str
    seconds: float  # each load or soak loop
    freezes: int  # SIGSTOP/SIGCONT cycles
    freeze_seconds: float
    examples: int  # hypothesis examples per backend
    full: bool

    def __str__(self) -> str:
        return self.name


def _soak_seconds(default: float) -> float:
    raw = os.environ.get(SOAK_ENV, "").strip()
    return float(raw) if raw else default


def short_profile() -> Profile:
    return Profile("short", _soak_seconds(3.0), 2, 1.5, 60, full=False)


def full_profile() -> Profile:
    return Profile("full", _soak_seconds(30.0), 10, 2.0, 1500, full=True)


def profiles() -> list[Any]:
    """``pytest.param``s of both profiles, the full one marked ``slow``."""
    import pytest

    return [
        pytest.param(short_profile(), id="short"),
        pytest.param(full_profile(), id="full", marks=pytest.mark.slow),
    ]


# -- recording --------------------------------------------------------------------------------

_lock = threading.Lock()


class Tally:
    """Thread-safe counters for one test; ``record``-ed once at its end."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.notes: list[str] = []

    def add(self, figure: str, n: int = 1) -> None:
        if figure not in FIGURES:
            raise KeyError(f"unknown figure {figure!r}")
        with self._lock:
            self._counts[figure] += n

    def note(self, message: str) -> None:
        """Something a bad figure should be explained by (printed if a test fails)."""
        with self._lock:
            if len(self.notes) < 20:
                self.notes.append(message)

    def __getitem__(self, figure: str) -> int:
        return self._counts[figure]

    def bad(self) -> dict[str, int]:
        return {f: self._counts[f] for f in MUST_BE_ZERO if self._counts[f]}

    def as_dict(self) -> dict[str, int]:
        return {f: self._counts[f] for f in FIGURES}


def record(test: str, tally: Tally) -> None:
    """Add a test's figures to the run's figures file (if the plugin set one up)."""
    path = os.environ.get(FIGURES_ENV)
    if not path:
        return
    line = json.dumps({"test": test, **tally.as_dict()})
    with _lock, open(path, "a", encoding="utf-8") as out:
        out.write(line + "\n")


def load(path: str) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """The summed figures and the per-test rows of a figures file."""
    total: Counter[str] = Counter()
    rows: list[dict[str, Any]] = []
    try:
        with open(path, encoding="utf-8") as lines:
            for line in lines:
                row = json.loads(line)
                rows.append(row)
                total.update({f: int(row.get(f, 0)) for f in FIGURES})
    except FileNotFoundError:
        pass
    return {f: total[f] for f in FIGURES}, rows


def render(total: dict[str, int], tests: int) -> list[str]:
    width = max(map(len, FIGURES))
    lines = [f"{'tests reporting':<{width}}  {tests:>12,}"]
    for figure in FIGURES:
        flag = "  <-- must be 0" if figure in MUST_BE_ZERO and total[figure] else ""
        lines.append(f"{figure.replace('_', ' '):<{width}}  {total[figure]:>12,}{flag}")
    return lines


# -- pytest plugin (``-p tests.reliability`` in setup.cfg) --------------------------------------


def pytest_configure(config: Any) -> None:
    if hasattr(config, "workerinput") or os.environ.get(FIGURES_ENV):
        return  # an xdist worker, or a figures file given by ``python -m tests.reliability``
    handle, path = tempfile.mkstemp(prefix="agenthub-cache-figures-", suffix=".jsonl")
    os.close(handle)
    os.environ[FIGURES_ENV] = path
    config._agenthub_figures = path


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: Any) -> None:
    path = os.environ.get(FIGURES_ENV)
    if hasattr(config, "workerinput") or not path:
        return
    total, rows = load(path)
    if not rows:
        return
    terminalreporter.write_sep("=", "agenthub-cache reliability figures")
    for line in render(total, len(rows)):
        terminalreporter.write_line(line)


def pytest_unconfigure(config: Any) -> None:
    path = getattr(config, "_agenthub_figures", None)
    if path:
        os.environ.pop(FIGURES_ENV, None)
        with _lock, contextlib.suppress(FileNotFoundError):
            os.unlink(path)


# -- the full run -------------------------------------------------------------------------------


def main(argv: Sequence[str]) -> int:
    handle, path = tempfile.mkstemp(prefix="agenthub-cache-figures-", suffix=".jsonl")
    os.close(handle)
    env = {**os.environ, FIGURES_ENV: path}
    env.setdefault(SOAK_ENV, "30")
    command = [sys.executable, "-m", "pytest", "-m", "slow", "-p", "no:cacheprovider", *argv]
    print("$", f"{SOAK_ENV}={env[SOAK_ENV]}", " ".join(command[1:]), flush=True)
    started = time.monotonic()
    status = subprocess.call(command, env=env)
    elapsed = time.monotonic() - started
    total, rows = load(path)
    os.unlink(path)
    print()
    print(f"agenthub-cache reliability, full run ({SOAK_ENV}={env[SOAK_ENV]}):")
    print(f"pytest exit status {status}, {elapsed:.0f} s")
    for line in render(total, len(rows)):
        print("   ", line)
    failing = [f for f in MUST_BE_ZERO if total[f]]
    if failing:
        print("FAILED: " + ", ".join(failing) + " not 0")
    return status or (1 if failing or not rows else 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
