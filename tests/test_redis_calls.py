"""What the Redis provider sends for each call, and that the leaner calls keep every behaviour.

redis-py packs every argument of a command in Python (~0.3-0.9 µs each, a ``str`` encoded
again), so the calls send as few arguments as they can, keys built as bytes: ``set_many``
sends per entry its entry key, its meta key and its value (the member, which the script needs
only for an entry filed before, is the rest of the entry key after the common prefix).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from agenthub_cache import CacheService
from agenthub_cache.providers.redis import RedisProvider
from tests.conftest import make_service

pytestmark = pytest.mark.filterwarnings("error")


@pytest.fixture(params=["redis", "redis_django"])
def svc(request: pytest.FixtureRequest) -> Iterator[CacheService]:
    service = make_service(request.param, default_ttl=600)
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
    assert args[:2] == ["600000", len(layout.entry(""))]
    assert len(args) == 2 + 3  # the values, no member beside them
    assert svc.get_many(["a:1", "b c", "ü"]) == {"a:1": 1, "b c": "two", "ü": [3]}


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
