"""What the Redis provider sends for each call, and that the leaner calls keep every behaviour.

redis-py packs every argument of a command in Python (~0.3-0.9 µs each, a ``str`` encoded
again), so the calls send as few arguments as they can, keys built as bytes: ``set_many``
sends per entry its entry key, its meta key and its value (the member, which the script needs
only for an entry filed before, is the rest of the entry key after the common prefix).

On the server, a plain ``set`` of a key filed nowhere is EXISTS (its meta) and SET, before the
script defines its helpers (``SET_PLAIN``); a private redis-server counts the commands.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.test.utils import override_settings

from agenthub_cache import FOREVER, CacheService
from agenthub_cache.providers.redis import RedisProvider
from tests import servers
from tests.conftest import make_service

pytestmark = pytest.mark.filterwarnings("error")


@pytest.fixture
def svc(redis_backend: str) -> Iterator[CacheService]:
    service = make_service(redis_backend, default_ttl=600)
    yield service
    service.clear()


@pytest.fixture
def sent(svc: CacheService, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any, Any]]:
    """Every script call the provider makes: (name, KEYS, ARGV) as handed to redis-py."""
    provider = svc.provider
    assert isinstance(provider, RedisProvider)
    calls: list[tuple[str, Any, Any]] = []
    run = provider._run

    def spy(name: str, keys_: Any, args: Any) -> Any:
        calls.append((name, list(keys_), list(args)))
        return run(name, keys_, args)

    monkeypatch.setattr(provider, "_run", spy)
    return calls


def test_set_many_sends_two_keys_and_a_value_per_entry_as_bytes(
    svc: CacheService, sent: list[tuple[str, Any, Any]]
) -> None:
    layout: Any = svc.provider.layout  # type: ignore[attr-defined]
    svc.set_many({"a:1": 1, "b c": "two", "ü": [3]})
    [(name, keys_, args)] = sent
    assert name == "set_many"
    assert keys_ == [
        layout.entry("a%3A1").encode(),
        layout.meta("a%3A1").encode(),
        layout.entry("b%20c").encode(),
        layout.meta("b%20c").encode(),
        layout.entry("%C3%BC").encode(),
        layout.meta("%C3%BC").encode(),
    ]
    assert args[:2] == [b"600000", len(layout.entry(""))]
    assert len(args) == 2 + 3  # the values, no member beside them
    assert svc.get_many(["a:1", "b c", "ü"]) == {"a:1": 1, "b c": "two", "ü": [3]}


def test_set_sends_its_keys_and_arguments_as_bytes(
    svc: CacheService, sent: list[tuple[str, Any, Any]]
) -> None:
    layout: Any = svc.provider.layout  # type: ignore[attr-defined]
    encode = svc.provider.encode  # type: ignore[attr-defined]
    svc.set("a:1", "v")
    svc.add("b", "w", ttl=FOREVER, indexes={"g": "x"})
    assert sent == [
        (
            "set",
            [layout.entry("a%3A1").encode(), layout.meta("a%3A1").encode()],
            [encode("v"), b"600000", b"", b"a%3A1"],
        ),
        (
            "set",
            [
                layout.entry("b").encode(),
                layout.meta("b").encode(),
                layout.index("g", "x").encode(),
            ],
            [encode("w"), b"", b"1", b"b", "g"],
        ),
    ]
    assert svc.find("g", "x") == ["b"]


def test_set_many_unfiles_entries_by_the_member_in_their_key(svc: CacheService) -> None:
    """The script finds an entry's member from its key when it was filed before."""
    keys_ = ["a:1", "b c", "ü", "plain", "%41"]
    for n, key in enumerate(keys_):
        svc.set(key, n, indexes={"g": "x", "h": key})
    assert sorted(svc.find("g", "x")) == sorted(keys_)
    svc.set_many(dict.fromkeys(keys_, "again") | {"new": 1})
    assert svc.find("g", "x") == []
    for key in keys_:
        assert svc.find("h", key) == []
        assert svc.indexes_of(key) == {}
    assert svc.get_many([*keys_, "new"]) == dict.fromkeys(keys_, "again") | {"new": 1}


@pytest.fixture(scope="module")
def own_server() -> Iterator[servers.Server]:
    server = servers.redis_server().start()
    yield server
    server.stop()


@pytest.fixture(
    params=["django_redis.cache.RedisCache", "django.core.cache.backends.redis.RedisCache"]
)
def counted(
    request: pytest.FixtureRequest, own_server: servers.Server, stores: dict[str, Any]
) -> Iterator[tuple[CacheService, redis.Redis]]:
    """A namespace on a private server, and a plain client there whose INFO commandstats
    counts what the namespace's calls ran (script bodies' commands included)."""
    url = f"{own_server.url}/0"
    with override_settings(CACHES={**stores, "own": {"BACKEND": request.param, "LOCATION": url}}):
        client = redis.Redis(host=own_server.host, port=own_server.port)
        yield CacheService("calls", default_ttl=600, cache="own"), client
        client.flushdb()  # the private server of this module: the one place a FLUSHDB is fine
        client.connection_pool.disconnect()


def commands_run(client: redis.Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    found = {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}
    found.pop("config|resetstat", None)
    return found


def test_a_plain_set_of_a_key_filed_nowhere_is_exists_and_set(
    counted: tuple[CacheService, redis.Redis],
) -> None:
    svc, client = counted
    svc.set("a", 1)
    client.config_resetstat()
    assert svc.set("a", 2)
    assert svc.set("b", 3, ttl=FOREVER)
    assert commands_run(client) == {"evalsha": 2, "exists": 2, "set": 2}
    assert client.pttl(svc.provider.layout.entry("a")) > 599_000  # type: ignore[attr-defined]
    assert client.pttl(svc.provider.layout.entry("b")) == -1  # type: ignore[attr-defined]
    client.config_resetstat()
    assert not svc.add("a", 4)
    assert svc.add("c", 5)
    assert commands_run(client) == {"evalsha": 2, "exists": 4, "set": 1}
    assert svc.get_many(["a", "b", "c"]) == {"a": 2, "b": 3, "c": 5}
    client.config_resetstat()
    assert svc.set("c", 6, ttl=0)  # expires at once: deleted
    assert commands_run(client) == {"evalsha": 1, "exists": 1, "del": 1}
    assert svc.get("c") is None


def test_a_plain_set_of_a_filed_key_still_unfiles_it(
    counted: tuple[CacheService, redis.Redis],
) -> None:
    svc, _ = counted
    for ttl in (60, FOREVER, 0):
        svc.set("a", 1, indexes={"g": "x"})
        assert not svc.add("a", 2)
        assert svc.find("g", "x") == ["a"]
        assert svc.set("a", 3, ttl=ttl)
        assert svc.find("g", "x") == []
        assert svc.indexes_of("a") == {}
        assert svc.get("a") == (None if ttl == 0 else 3)
