"""Settings for ``cache_namespaces`` run as a real subprocess by the command tests.

The test process hands over its stores in environment variables: ``AGENTHUB_CACHE_TEST_DB``
(the SQLite file of ``tests.settings``), ``AGENTHUB_CACHE_TEST_CACHES`` (its ``CACHES``: the
private redis-server, the DB cache table, the files directory) and
``AGENTHUB_CACHE_TEST_NAMESPACES`` (its ``AGENTHUB_CACHE``), all as JSON.
"""

from __future__ import annotations

import json
import os

from tests.settings import *  # noqa: F403

CACHES = json.loads(os.environ["AGENTHUB_CACHE_TEST_CACHES"])
AGENTHUB_CACHE = json.loads(os.environ["AGENTHUB_CACHE_TEST_NAMESPACES"])
