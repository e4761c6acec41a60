"""The contract suite on a Redis Cluster: the same tests as ``test_contract``, run again
here on the ``cluster`` alias (3 primaries + 3 replicas the tests start). No test is copied:
``from tests.test_contract import *`` collects the suite in this module, and the ``backend``
fixture below points it at the cluster."""

from __future__ import annotations

import pytest

from tests.test_contract import *  # noqa: F403  (the shared contract tests, collected here)

pytestmark = pytest.mark.extended


@pytest.fixture
def backend(cluster_alias: str) -> str:
    return cluster_alias
