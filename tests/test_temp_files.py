"""A test run leaves nothing behind in the temp directory (issue 14: one
``/tmp/agenthub-cache-tests-*`` directory was left after every run)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_test_settings_remove_the_directory_they_make(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    env.pop("AGENTHUB_CACHE_TEST_DB", None)
    made = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, tests.settings as s; print(os.path.isdir(s._TMP), s._TMP)",
        ],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert made[0] == "True"
    assert made[1].startswith(str(tmp_path / "agenthub-cache-tests-"))
    assert list(tmp_path.iterdir()) == []


def test_a_directory_handed_over_is_left_to_its_owner(tmp_path: Path) -> None:
    """A worker process given the parent's database must not remove its directory under the parent."""
    env = {
        **os.environ,
        "AGENTHUB_CACHE_TEST_DB": str(tmp_path / "test.sqlite3"),
        "PYTHONPATH": str(ROOT),
    }
    subprocess.run([sys.executable, "-c", "import tests.settings"], env=env, cwd=ROOT, check=True)
    assert tmp_path.is_dir()
