"""Every Lua script of the Redis provider declares every key it touches in ``KEYS``.

Redis states the rule but enforces it only on a cluster, and there only by slot; so here the
provider's own scripts run on a private redis-server behind a prelude that asks the server,
for each ``redis.call``, which of its arguments are keys (``COMMAND GETKEYS``: Redis's own key
specs) and fails the script if one is not in ``KEYS``. Every operation of the API runs on
them, sync and async, on both Redis backends, over entries filed, re-filed and unfiled.

Then the retry path: a script that meets filings its call did not declare changes nothing and
names them, and the client sends it again with them declared. The other client here files the
entry between two attempts (a hook on the first client's connection runs it there), so the
call needs a third attempt; one that is outrun every time gives up as an outage, having
changed nothing. A plain call on an unfiled key stays one EVALSHA.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import redis
from django.core.cache import caches
from django.test.utils import override_settings

from agenthub_cache import CacheService, CacheUnavailable
from agenthub_cache.providers.redis import RedisProvider
from agenthub_cache.providers.redis.declared import MAX_REDECLARES, StillRefiled
from agenthub_cache.providers.redis.scripts import SOURCES
from tests import servers

pytestmark = pytest.mark.filterwarnings("error")

#: Shadows ``redis`` for the script below it: each ``redis.call`` first checks its keys.
CHECKED_PRELUDE = """
local __redis = redis
local __declared = {}
for __i = 1, #KEYS do __declared[KEYS[__i]] = true end
local redis = setmetatable({}, {__index = __redis})
redis.call = function(command, ...)
  if string.upper(command) ~= 'TIME' then
    local ok, found = pcall(__redis.call, 'COMMAND', 'GETKEYS', command, ...)
    if not ok then error('COMMAND GETKEYS refused ' .. command, 0) end
    for _, key in ipairs(found) do
      if not __declared[key] then
        error('undeclared key ' .. key .. ' in ' .. command, 0)
      end
    end
  end
  return __redis.call(command, ...)
end
"""

ALIASES = ["dr", "dj"]
BACKENDS = {
    "dr": "django_redis.cache.RedisCache",
    "dj": "django.core.cache.backends.redis.RedisCache",
}


@pytest.fixture(scope="module")
def checked_server() -> Iterator[servers.Server]:
    """A private server whose connections all run the checked scripts (each connection
    registers its scripts from ``SOURCES`` when it is created, which happens in here)."""
    server = servers.redis_server().start()
    with pytest.MonkeyPatch.context() as patch:
        for name, source in list(SOURCES.items()):
            patch.setitem(SOURCES, name, CHECKED_PRELUDE + source)
        yield server
    server.stop()


@pytest.fixture
def checked(checked_server: servers.Server, stores: dict[str, Any]) -> Iterator[redis.Redis]:
    """Aliases ``dr``/``dj`` on the checked server, and ``dr_b``/``dj_b``: the same keys
    (same database and KEY_PREFIX) through connections of their own (other OPTIONS), for
    "another client"."""
    configured = dict(stores)
    for n, (alias, backend) in enumerate(BACKENDS.items()):
        location = f"{checked_server.url}/{n}"
        configured[alias] = {"BACKEND": backend, "LOCATION": location, "KEY_PREFIX": "ck"}
        other = {"SOCKET_TIMEOUT": 4.5} if alias == "dr" else {"socket_timeout": 4.5}
        configured[f"{alias}_b"] = {**configured[alias], "OPTIONS": other}
    with override_settings(CACHES=configured):
        client = redis.Redis(host=checked_server.host, port=checked_server.port)
        yield client
        for db in range(len(BACKENDS)):
            client.execute_command("SELECT", db)
            client.flushdb()  # a throw-away server of our own
        client.connection_pool.disconnect()


def test_the_checked_scripts_refuse_an_undeclared_key(checked: redis.Redis) -> None:
    """The check itself: a script touching a key it did not declare fails."""
    script = checked.register_script(CHECKED_PRELUDE + "return redis.call('GET', 'elsewhere')")
    with pytest.raises(redis.ResponseError, match="undeclared key elsewhere in GET"):
        script(keys=["declared"])
    assert script(keys=["elsewhere"]) is None


def _raw_for(svc: CacheService, checked: redis.Redis) -> redis.Redis:
    db = ALIASES.index(svc.cache_alias.removesuffix("_b"))
    kwargs = checked.connection_pool.connection_kwargs
    return redis.Redis(host=kwargs["host"], port=kwargs["port"], db=db)


def _stored(svc: CacheService, key: str) -> str:
    return str(caches[svc.cache_alias].make_key(svc.make_key(key)))


@pytest.mark.parametrize("alias", ALIASES)
def test_every_operation_runs_on_scripts_that_declare_every_key(
    checked: redis.Redis, alias: str
) -> None:
    svc = CacheService("every-op", default_ttl=60, cache=alias)
    raw = _raw_for(svc, checked)
    svc.set("a", 1, indexes={"g": "x", "h": "y"})
    svc.set("a", 2, indexes={"g": "x2"})  # re-filed: out of g=x and h=y
    svc.set("a", 3)  # unfiled
    svc.set("b", 1, indexes={"g": "x"})
    assert svc.add("b", 9, indexes={"g": "z"}) is False
    svc.set("b", 1, ttl=0)  # expire now, filed
    svc.set("c", 1, indexes={"g": "x"})
    svc.set("d", 1, indexes={"h": "y"})
    svc.set_many({"c": 2, "d": 3, "e": 4})  # over filed entries
    svc.set("f", 1, indexes={"g": "x", "h": "y"})
    svc.touch("f", 30)
    svc.persist("f")
    svc.touch("f", 0)
    svc.set("p", 1, indexes={"g": "x"})
    assert svc.pop("p") == 1
    svc.set("n", 1, indexes={"g": "x"})
    raw.delete(_stored(svc, "n"))  # a dangling meta: incr files it out
    assert svc.incr("n") == 1
    svc.set("q", 1, indexes={"g": "x", "h": "y"})
    assert svc.delete("q")
    svc.set_many({"r": 1, "s": 2})
    svc.set("r", 1, indexes={"g": "x"})
    assert svc.delete_many(["r", "s"]) == 2
    assert svc.get_or_set("t", 5) == 5
    for key in ("u", "v", "w"):
        svc.set(key, key, indexes={"g": "x", "h": key})
    assert sorted(svc.find("g", "x")) == ["u", "v", "w"]
    assert svc.get_by_index("h", "u") == {"u": "u"}
    raw.delete(_stored(svc, "w"))  # its meta and memberships dangle: prune drops them
    assert svc.prune() > 0
    assert svc.delete_by_index("g", "x") == 2  # u and v, each out of its h index too
    assert svc.find("h", "u") == []
    with svc.lock("l"):
        pass
    for key in ("x1", "x2"):
        svc.set(key, 1, indexes={"g": "x", "h": "y"})
    assert svc.clear() >= 2
    assert svc.count() == 0

    async def twins() -> None:
        await svc.aset("a", 1, indexes={"g": "x", "h": "y"})
        await svc.aset("a", 2, indexes={"g": "x2"})
        assert await svc.aadd("a", 3) is False
        await svc.aset_many({"a": 4, "b": 5})
        await svc.aset("c", 1, indexes={"g": "x"})
        await svc.atouch("c", 20)
        assert await svc.apop("c") == 1
        await svc.aset("d", 1, indexes={"g": "x"})
        assert await svc.adelete("d")
        await svc.aset("e", 1, indexes={"g": "x"})
        assert await svc.adelete_many(["e", "a"]) == 2
        await svc.aset("n", 1, indexes={"g": "x"})
        await svc.atouch("n", 0)
        assert await svc.aincr("n") == 1
        assert await svc.aget_or_set("g", 1) == 1
        await svc.aset("f", 1, indexes={"g": "x", "h": "y"})
        assert await svc.afind("g", "x") == ["f"]
        assert await svc.aprune() == 0
        assert await svc.adelete_by_index("g", "x") == 1
        await svc.aset("f", 1, indexes={"g": "x", "h": "y"})
        assert await svc.aclear() >= 1
        await svc.aclose()

    asyncio.run(twins())
    raw.close()


# -- the retry path -----------------------------------------------------------------------


def _hook_sync(
    monkeypatch: pytest.MonkeyPatch, svc: CacheService, between: Callable[[int], None]
) -> list[Any]:
    """Run ``between(n)`` after the n-th reply to the service's EVALSHA that asked for more
    keys (before the client sends it again); returns the list of every EVALSHA reply."""
    provider = svc.provider
    assert isinstance(provider, RedisProvider)
    connection = provider.connection
    execute = connection._execute
    replies: list[Any] = []

    def hooked(*args: Any) -> Any:
        reply = execute(*args)
        if args[0] == "EVALSHA":
            replies.append(reply)
            if isinstance(reply, list):
                between(sum(isinstance(r, list) for r in replies))
        return reply

    monkeypatch.setattr(connection, "_execute", hooked)
    return replies


def _index_keys(raw: redis.Redis, svc: CacheService) -> dict[bytes, list[bytes]]:
    provider = svc.provider
    assert isinstance(provider, RedisProvider)
    return {k: raw.zrange(k, 0, -1) for k in raw.scan_iter(match=provider.layout.match("i:"))}


@pytest.mark.parametrize("alias", ALIASES)
@pytest.mark.parametrize("operation", ["delete", "pop", "set", "set_many", "touch"])
def test_an_entry_filed_again_between_attempts_is_still_handled_atomically(
    checked: redis.Redis, monkeypatch: pytest.MonkeyPatch, alias: str, operation: str
) -> None:
    """The client believes "k" is filed nowhere (it declares no index key); "k" is filed
    under g=1 (first reply: declare g=1); before the second attempt another client files it
    under g=2 instead (second reply: declare g=2); the third attempt runs, with both
    declared. No index is left holding "k" where its meta does not say so."""
    svc = CacheService("retry", default_ttl=60, cache=alias)
    other = CacheService("retry", default_ttl=60, cache=f"{alias}_b")
    assert isinstance(other.provider, RedisProvider)
    assert other.provider.connection is not svc.provider.connection  # really another client
    raw = _raw_for(svc, checked)
    svc.set("k", "v1", indexes={"g": "1"})

    def between(n: int) -> None:
        if n == 1:
            other.set("k", "v2", indexes={"g": "2"})

    replies = _hook_sync(monkeypatch, svc, between)
    operations: dict[str, Callable[[], Any]] = {
        "delete": lambda: svc.delete("k"),
        "pop": lambda: svc.pop("k"),
        "set": lambda: svc.set("k", "v3", indexes={"h": "3"}),
        "set_many": lambda: svc.set_many({"k": "v3", "j": "other"}),
        "touch": lambda: svc.touch("k", 120),
    }
    result = operations[operation]()
    assert [isinstance(r, list) for r in replies] == [True, True, False]
    assert len(replies[0]) == 1
    assert replies[0][0].endswith(b"i:g:1")
    assert len(replies[1]) == 1
    assert replies[1][0].endswith(b"i:g:2")  # only what was still undeclared
    found = {name.rsplit(b":", 1)[1]: members for name, members in _index_keys(raw, svc).items()}
    if operation == "delete":
        assert result is True
        assert svc.get("k") is None
        assert found == {}
    elif operation == "pop":
        assert result == "v2"  # the value the other client wrote, taken with its filing
        assert found == {}
    elif operation == "set":
        assert svc.get("k") == "v3"
        assert svc.indexes_of("k") == {"h": "3"}
        assert found == {b"3": [b"k"]}
    elif operation == "set_many":
        assert svc.get_many(["k", "j"]) == {"k": "v3", "j": "other"}
        assert svc.indexes_of("k") == {}
        assert found == {}
    else:
        assert 119 < (svc.ttl("k") or 0) <= 120
        assert svc.indexes_of("k") == {"g": "2"}
        assert svc.find("g", "2") == ["k"]
        assert found == {b"2": [b"k"]}
    raw.close()


@pytest.mark.parametrize("alias", ALIASES)
def test_a_call_outrun_every_time_gives_up_as_an_outage_having_changed_nothing(
    checked: redis.Redis, monkeypatch: pytest.MonkeyPatch, alias: str
) -> None:
    """Each time the client declares what it was told, another client has filed the entry
    under a new index value: after ``MAX_REDECLARES`` attempts the call is an outage
    (``CacheUnavailable``; a default under ``FAIL_SILENTLY``), and the entry is as the other
    client left it."""
    svc = CacheService("outrun", default_ttl=60, cache=alias)
    quiet = CacheService("outrun", default_ttl=60, cache=alias, fail_silently=True)
    other = CacheService("outrun", default_ttl=60, cache=f"{alias}_b")
    svc.set("k", "v0", indexes={"g": "0"})

    def between(n: int) -> None:
        other.set("k", f"v{n}", indexes={"g": str(n)})

    replies = _hook_sync(monkeypatch, svc, between)
    with pytest.raises(CacheUnavailable, match="undeclared index keys") as caught:
        svc.delete("k")
    assert isinstance(caught.value.__cause__, StillRefiled)
    assert len(replies) == MAX_REDECLARES + 1
    assert all(isinstance(reply, list) for reply in replies)
    last = MAX_REDECLARES + 1
    assert svc.get("k") == f"v{last}"
    assert svc.indexes_of("k") == {"g": str(last)}
    assert svc.find("g", str(last)) == ["k"]
    assert svc.find("g", str(last - 1)) == []
    replies.clear()
    assert quiet.delete("k") is False  # the same outage, silenced
    assert len(replies) == MAX_REDECLARES + 1


@pytest.mark.parametrize("alias", ALIASES)
def test_async_twins_are_sent_again_with_the_keys_asked_for(
    checked: redis.Redis, alias: str
) -> None:
    """The async client: the entry is re-filed by another client between the first and
    second attempt of ``adelete`` (a hook on the loop's client), and the third attempt
    deletes it and every filing."""
    svc = CacheService("aretry", default_ttl=60, cache=alias)
    other = CacheService("aretry", default_ttl=60, cache=f"{alias}_b")
    raw = _raw_for(svc, checked)

    async def run() -> list[Any]:
        await svc.aset("k", 1, indexes={"g": "1", "h": "1"})
        provider = svc.provider
        assert isinstance(provider, RedisProvider)
        client = provider.connection.async_handle().client
        execute: Callable[..., Awaitable[Any]] = client.execute_command
        replies: list[Any] = []

        async def hooked(*args: Any, **kwargs: Any) -> Any:
            reply = await execute(*args, **kwargs)
            if args[0] == "EVALSHA":
                replies.append(reply)
                if len(replies) == 1:
                    await other.aset("k", 2, indexes={"g": "2"})
            return reply

        client.execute_command = hooked  # type: ignore[method-assign]
        try:
            assert await svc.adelete("k")
        finally:
            del client.execute_command
        await svc.aclose()
        await other.aclose()
        return replies

    replies = asyncio.run(run())
    assert [isinstance(r, list) for r in replies] == [True, True, False]
    assert sorted(key.rsplit(b":", 2)[-2] for key in replies[0]) == [b"g", b"h"]
    assert len(replies[1]) == 1
    assert replies[1][0].endswith(b"i:g:2")
    assert _index_keys(raw, svc) == {}
    assert svc.get("k") is None
    raw.close()


def _evalsha_calls(raw: redis.Redis) -> int:
    return int(raw.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))


@pytest.mark.parametrize("alias", ALIASES)
def test_a_call_on_an_entry_filed_nowhere_or_as_declared_is_one_evalsha(
    checked: redis.Redis, alias: str
) -> None:
    """The common case keeps its one round trip: set/add/delete/pop/incr/touch of a key filed
    nowhere, a first filing, and a set that keeps the entry's indexes. (A guard for the
    retry path: this held before it too.) The scripts are loaded first: a server's first call
    of a script is two EVALSHAs (NOSCRIPT, then again after SCRIPT LOAD), and under xdist
    this test can be the first here to call one."""
    svc = CacheService("one-call", default_ttl=60, cache=alias)
    raw = _raw_for(svc, checked)
    for source in SOURCES.values():  # on the server already, whichever tests ran here before
        raw.script_load(source)
    calls: list[Callable[[], Any]] = [
        lambda: svc.set("k", 1),
        lambda: svc.add("k2", 1),
        lambda: svc.touch("k", 30),
        lambda: svc.incr("n"),
        lambda: svc.pop("k2"),
        lambda: svc.delete("k"),
        lambda: svc.set_many({"a": 1, "b": 2}),
        lambda: svc.set("i", 1, indexes={"g": "1", "h": "2"}),
        lambda: svc.set("i", 2, indexes={"g": "1", "h": "2"}),
        lambda: svc.set("i", 3, indexes={"h": "2", "g": "1"}),
    ]
    for call in calls:
        before = _evalsha_calls(raw)
        call()
        assert _evalsha_calls(raw) - before == 1, call
    raw.close()
