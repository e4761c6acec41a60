"""The contract suite on a Sentinel alias: django-redis's ``SentinelClient`` for the sync
methods, ``redis.asyncio.sentinel`` for the async ones, on a Sentinel set the tests start.

The shared tests are imported, not copied: pytest collects them again in this module, where
the ``backend`` fixture below puts each on the ``sentinel`` alias.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test.utils import override_settings

from tests import servers
from tests.test_contract import *  # noqa: F403  (the shared contract tests, collected here)

pytestmark = pytest.mark.extended


def sentinel_alias(sentinels: servers.SentinelSet, db: int = 1, **options: Any) -> dict[str, Any]:
    """A django-redis alias that finds its primary through ``sentinels``."""
    return {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": f"redis://{sentinels.service}/{db}",
        "KEY_PREFIX": "sn",
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.SentinelClient",
            "CONNECTION_FACTORY": "django_redis.pool.SentinelConnectionFactory",
            "SENTINELS": sentinels.addresses,
            "SOCKET_TIMEOUT": 2,
            "SOCKET_CONNECT_TIMEOUT": 2,
            **options,
        },
    }


@pytest.fixture(scope="module")
def sentinel_servers() -> Iterator[servers.SentinelSet]:
    started = servers.sentinel_set()
    yield started
    started.stop()


@pytest.fixture
def backend(stores: dict[str, Any], sentinel_servers: servers.SentinelSet) -> Iterator[str]:
    with override_settings(CACHES={**stores, "sentinel": sentinel_alias(sentinel_servers)}):
        yield "sentinel"


async def test_async_twins_run_on_the_sentinel_primary(
    service: Any, sentinel_servers: servers.SentinelSet
) -> None:
    assert await service.aset("k", {"v": 1}, indexes={"grp": "g"})
    assert service.get("k") == {"v": 1}  # the sync side reads what the async side wrote
    assert await service.afind("grp", "g") == ["k"]
    assert service.provider.describe()["location"].startswith("sentinel://127.0.0.1:")
    await service.aclose()
