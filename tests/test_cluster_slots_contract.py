"""The contract suite once more on the cluster, each test's namespace spread over
``SLOTS = 4`` hash tags (entries on different primaries, one index set per tag): the same
shared tests (``from tests.test_contract import *``), a ``service`` fixture of its own."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from django.test.utils import override_settings

from agenthub_cache import CacheService
from tests.conftest import make_service, unique_namespace
from tests.test_contract import *  # noqa: F403  (the shared contract tests, collected here)

pytestmark = pytest.mark.extended

SLOTS = 4


@pytest.fixture
def backend(cluster_alias: str) -> str:
    return cluster_alias


@pytest.fixture
def service(backend: str) -> Iterator[CacheService]:
    namespace = unique_namespace("slots")
    declared = {namespace: {"CACHE": backend, "TTL": 60, "SLOTS": SLOTS}}
    with override_settings(AGENTHUB_CACHE={"CACHE": backend, "NAMESPACES": declared}):
        svc = make_service(backend, namespace, default_ttl=60)
        assert svc.provider.describe()["slots"] == SLOTS
        yield svc
        svc.clear()


def test_prune_reclaims_dead_members(service: CacheService) -> None:  # replaces the shared one
    """With one index set per tag, an index whose every member expired expires itself, so
    the shared test's two keys must share a tag for a dead member to be left to prune."""
    layout_for = service.provider._layout_for  # type: ignore[attr-defined]
    gone = next(f"gone{n}" for n in range(1000) if layout_for(f"gone{n}") is layout_for("live"))
    other = next(f"x{n}" for n in range(1000) if layout_for(f"x{n}") is not layout_for("live"))
    service.set(gone, 1, ttl=1, indexes={"g": "x"})
    service.set(other, 1, ttl=1, indexes={"g": "x"})  # alone in its tag's index set
    service.set("live", 2, indexes={"g": "x"})
    time.sleep(1.6)
    assert service.prune() == 1  # the member beside "live"; the lone one's set expired
    assert service.prune() == 0
    assert service.find("g", "x") == ["live"]
