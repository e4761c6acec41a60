"""How many pytest-xdist workers ``-n auto`` (``setup.cfg``'s ``addopts``) starts for this suite.

The default selection mostly waits (on expiries, subprocesses and servers starting), so three
workers run it in about a third of the time, also on two cores: 7 minutes in one process, 2.5
with three. Each worker starts its own private servers (``conftest.py``). Any other selection,
``-m extended`` (every worker would start its own Redis Cluster and Sentinel set) or ``-m slow``
(the reliability runs, which measure), runs in one process, as does ``-n 0``. The
``PYTEST_XDIST_AUTO_NUM_WORKERS`` environment variable, when set, decides instead.
"""

from __future__ import annotations

import os

import pytest

#: The ``-m`` expression of ``addopts``: the selection that runs on workers.
DEFAULT_SELECTION = "not slow and not extended"
#: Workers for the default selection.
WORKERS = 3


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # xdist's own hook reads it
    return WORKERS if config.option.markexpr == DEFAULT_SELECTION else 0
