"""System checks and bad input for Redis Cluster aliases: SLOTS (E014, W006), a LOCATION or
KEY_PREFIX that cannot work (E015), and a cluster that cannot be used (E016, deploy): each a
clear message naming the alias, and never a hang. Needs no cluster: the servers here are a
refused port, the suite's single Redis, and one cluster node that serves no slot."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import caches
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test.utils import override_settings
from redis.exceptions import RedisClusterException

from agenthub_cache import CacheRefused, CacheService, CacheUnavailable, checks, checks_cluster
from tests import servers

CLUSTER = "agenthub_cache.backends.RedisClusterCache"


def with_alias(location: Any, **extra: Any) -> dict[str, Any]:
    return {**settings.CACHES, "cl": {"BACKEND": CLUSTER, "LOCATION": location, **extra}}


def ids(messages: list[Any]) -> list[str]:
    return [message.id for message in messages]


def test_cluster_checks_have_their_reserved_ids() -> None:
    reserved = {
        "E014": checks.E014,
        "E015": checks_cluster.E015,
        "E016": checks_cluster.E016,
        "W006": checks.W006,
    }
    assert {key: f"agenthub_cache.{key}" for key in reserved} == reserved
    assert set(reserved.values()) <= set(checks.IDS)
    assert len(set(checks.IDS)) == len(checks.IDS)


def test_a_bad_cluster_location_is_reported_beside_a_settings_error() -> None:
    with override_settings(
        CACHES=with_alias("redis://127.0.0.1:7000/1"),
        AGENTHUB_CACHE={"NAMESPACES": {"big": {"SLOTS": 0}}},
    ):
        assert ids(checks.check_settings()) == [checks.E014, checks_cluster.E015]


@pytest.mark.parametrize("slots", [0, -1, 1025, "4", True, 2.5])
def test_bad_slots_is_e014(slots: Any) -> None:
    with override_settings(AGENTHUB_CACHE={"NAMESPACES": {"big": {"SLOTS": slots}}}):
        messages = checks.check_settings()
    assert ids(messages) == [checks.E014]
    assert "'big'" in messages[0].msg
    assert messages[0].hint


def test_slots_above_one_off_a_cluster_warns_w006() -> None:
    setting = {"CACHE": "redis", "NAMESPACES": {"big": {"SLOTS": 16}, "small": {}}}
    with override_settings(AGENTHUB_CACHE=setting):
        messages = checks.check_settings()
    assert ids(messages) == [checks.W006]
    assert "'big'" in messages[0].msg
    assert "'small'" not in messages[0].msg
    assert "'redis'" in messages[0].msg


def test_slots_on_a_cluster_alias_is_fine() -> None:
    setting = {"CACHE": "cl", "NAMESPACES": {"big": {"SLOTS": 1024}}}
    with override_settings(CACHES=with_alias("redis://127.0.0.1:7000"), AGENTHUB_CACHE=setting):
        assert checks.check_settings() == []


@pytest.mark.parametrize(
    ("location", "extra", "expected"),
    [
        ("redis://127.0.0.1:7000/1", {}, "database 1"),
        (["redis://127.0.0.1:7000", "redis://127.0.0.1:7001/0", "redis://h:1/2"], {}, "database 2"),
        ("memcached://127.0.0.1:11211", {}, "not a redis:// URL"),
        ([], {}, "no startup node"),
        ("redis://127.0.0.1:7000", {"KEY_PREFIX": "{site}"}, "brace"),
    ],
)
def test_bad_cluster_location_is_e015_naming_the_alias(
    location: Any, extra: dict[str, Any], expected: str
) -> None:
    with override_settings(CACHES=with_alias(location, **extra)):
        messages = checks.check_settings()
    assert ids(messages) == [checks_cluster.E015]
    assert "CACHES['cl']" in messages[0].msg
    assert expected in messages[0].msg


def test_manage_py_check_reports_e015() -> None:
    with (
        override_settings(CACHES=with_alias("redis://127.0.0.1:7000/3")),
        pytest.raises(SystemCheckError, match=checks_cluster.E015),
    ):
        call_command("check")


@pytest.fixture(scope="module")
def slotless_node() -> Iterator[servers.Server]:
    """A cluster-enabled node that never joined a cluster: no slot is served."""
    server = servers.redis_server(
        None, "--cluster-enabled", "yes", "--cluster-port", str(servers.free_port())
    ).start()
    yield server
    server.stop()


def deploy_messages(location: Any) -> list[Any]:
    with override_settings(CACHES=with_alias(location)):
        started = time.monotonic()
        messages = checks_cluster.check_redis_cluster()
        assert time.monotonic() - started < 5  # one short probe per node: never a hang
    return messages


def test_unreachable_startup_nodes_are_e016() -> None:
    dead = [f"redis://127.0.0.1:{servers.free_port()}" for _ in range(2)]
    messages = deploy_messages(dead)
    assert ids(messages) == [checks_cluster.E016]
    assert "'cl'" in messages[0].msg
    assert "cannot be reached" in messages[0].msg
    assert messages[0].hint


def test_a_single_redis_is_not_a_cluster_e016(redis_server: servers.Server) -> None:
    messages = deploy_messages(redis_server.url)
    assert ids(messages) == [checks_cluster.E016]
    assert "without cluster support" in messages[0].msg
    assert "django_redis.cache.RedisCache" in messages[0].hint


def test_a_cluster_with_slots_not_covered_is_e016(slotless_node: servers.Server) -> None:
    messages = deploy_messages(slotless_node.url)
    assert ids(messages) == [checks_cluster.E016]
    assert "cluster_state:fail" in messages[0].msg


def test_an_unreachable_cluster_fails_calls_fast_with_the_alias() -> None:
    """At run time: CacheUnavailable (or the default under FAIL_SILENTLY) within about the
    connect timeout, never a hang; the service was created without touching the network."""
    dead = f"redis://127.0.0.1:{servers.free_port()}"
    options = {"OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5}}
    with override_settings(CACHES=with_alias(dead, **options)):
        service = CacheService("cl-down", default_ttl=60, cache="cl")
        started = time.monotonic()
        with pytest.raises(CacheUnavailable, match="'cl'"):
            service.get("k")
        silent = CacheService("cl-down", default_ttl=60, cache="cl", fail_silently=True)
        assert silent.get("k", "dflt") == "dflt"
        assert silent.set("k", 1) is False
        assert time.monotonic() - started < 5


def test_a_single_redis_as_location_is_refused_naming_the_fix(redis_server: servers.Server) -> None:
    """At run time, a LOCATION that is a plain Redis (cluster support disabled) is a
    misconfiguration, not an outage: ``CacheRefused`` naming the alias and the fix, sync and
    async, also under FAIL_SILENTLY (which silences only an unreachable store). It was
    ``CacheUnavailable`` ("Cluster mode is not enabled"), and FAIL_SILENTLY returned the
    default forever."""
    with override_settings(CACHES=with_alias(redis_server.url)):
        loud = CacheService("cl-plain", default_ttl=60, cache="cl")
        silent = CacheService("cl-plain", default_ttl=60, cache="cl", fail_silently=True)
        for service in (loud, silent):
            with pytest.raises(CacheRefused, match="'cl'") as raised:
                service.get("k", "dflt")
            message = str(raised.value)
            assert "without cluster support" in message
            assert "LOCATION" in message
            assert "cluster-enabled yes" in message
            with pytest.raises(CacheRefused, match="cluster-enabled yes"):
                service.set("k", 1)

        async def both() -> None:
            for service in (loud, silent):
                with pytest.raises(CacheRefused, match="cluster-enabled yes"):
                    await service.aget("k", "dflt")
                with pytest.raises(CacheRefused, match="cluster-enabled yes"):
                    await service.afind("idx", "v")

        asyncio.run(both())
        with pytest.raises(RedisClusterException, match="cluster-enabled yes"):
            caches["cl"].get("k")  # the Django backend itself names the fix too
