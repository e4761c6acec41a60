"""The recipes of ``docs/security.md``, run: an ACL user without FLUSHDB/FLUSHALL/KEYS,
passwords given outside ``LOCATION``, and django-redis's JSON serializer instead of pickle."""

from __future__ import annotations

import asyncio
import io
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.core.cache import caches
from django.core.management import call_command
from django.test.utils import override_settings

from agenthub_cache import FOREVER, CacheService, CacheUnavailable
from tests import servers
from tests.conftest import unique_namespace

pytestmark = pytest.mark.filterwarnings("error")

PASSWORD = "s3cret-app-password"
ALIASES = ["dr", "dj"]
#: The ACL recipe of docs/security.md: every key (``~*``), or only the site's KEY_PREFIX.
APP_USER = ["ACL", "SETUSER", "app", "on", f">{PASSWORD}", "+@all", "-flushdb", "-flushall"]
KEY_PATTERNS = ["~*", "~site:*"]


def app_caches(url: str, password: str) -> dict[str, Any]:
    """The app's aliases as docs/security.md shows them: credentials in OPTIONS only."""
    return {
        "dr": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"{url}/0",
            "KEY_PREFIX": "site",
            "OPTIONS": {"USERNAME": "app", "PASSWORD": password, "SOCKET_TIMEOUT": 2},
        },
        "dj": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"{url}/0",
            "KEY_PREFIX": "site",
            "OPTIONS": {"username": "app", "password": password, "socket_timeout": 2},
        },
    }


@pytest.fixture(params=KEY_PATTERNS)
def acl_server(request: pytest.FixtureRequest) -> Iterator[tuple[servers.Server, redis.Redis]]:
    """A server whose default user is off; ``admin`` may do anything, ``app`` per the recipe."""
    server = servers.redis_server().start()
    setup = redis.Redis(host=server.host, port=server.port)
    setup.execute_command("ACL", "SETUSER", "admin", "on", ">adminpw", "~*", "&*", "+@all")
    setup.execute_command(*APP_USER, "-keys", request.param)
    setup.execute_command("ACL", "SETUSER", "default", "off")
    setup.close()
    admin = redis.Redis(host=server.host, port=server.port, username="admin", password="adminpw")
    yield server, admin
    admin.close()
    server.stop()


def exercise(svc: CacheService) -> None:
    """Every sync and async call of the API once, checking what each returns."""
    assert svc.set("a", {"n": 1}, indexes={"user": "42"})
    assert svc.add("b", {"n": 2}, indexes={"user": "42"})
    assert svc.set_many({"c": 3, "d": 4}) == []
    assert svc.get("a") == {"n": 1}
    assert svc.get_many(["a", "c"]) == {"a": {"n": 1}, "c": 3}
    assert svc.has_key("a")
    assert svc.touch("a", 60)
    assert svc.persist("a")
    assert svc.ttl("a") is None
    assert svc.incr("hits") == 1
    assert svc.decr("hits") == 0
    assert svc.pop("d") == 4
    assert svc.get_or_set("e", lambda: 5) == 5
    assert sorted(svc.find("user", "42")) == ["a", "b"]
    assert svc.get_by_index("user", "42") == {"a": {"n": 1}, "b": {"n": 2}}
    with svc.lock("job", timeout=5, blocking_timeout=1):
        pass
    assert sorted(svc.keys()) == ["a", "b", "c", "e", "hits"]
    assert svc.count() == 5
    assert svc.stats()["entries"] == 5
    assert svc.prune() == 0
    assert svc.delete_by_index("user", "42") == 2
    assert svc.delete("c")
    assert svc.delete_many(["e", "nope"]) == 1
    assert svc.clear() == 1

    async def twins() -> None:
        assert await svc.aset("a", 1, indexes={"user": "7"}, ttl=FOREVER)
        assert await svc.aget("a") == 1
        assert await svc.aincr("n", 5) == 5
        assert await svc.afind("user", "7") == ["a"]
        async with svc.lock("job", timeout=5, blocking_timeout=1):
            pass
        assert sorted(await svc.akeys()) == ["a", "n"]
        assert await svc.aprune() == 0
        assert await svc.apop("a") == 1
        assert await svc.aclear() == 1
        await svc.aclose()

    asyncio.run(twins())


@pytest.mark.parametrize("alias", ALIASES)
def test_works_under_an_acl_user_without_flush_or_keys(
    acl_server: tuple[servers.Server, redis.Redis], alias: str, stores: dict[str, Any]
) -> None:
    server, admin = acl_server
    admin.execute_command("ACL", "LOG", "RESET")
    admin.config_resetstat()
    with override_settings(CACHES={**stores, **app_caches(server.url, PASSWORD)}):
        svc = CacheService(unique_namespace("acl"), default_ttl=60, cache=alias)
        exercise(svc)
        out = io.StringIO()
        call_command("check", "--deploy", "--tag", "caches", stdout=out, stderr=io.StringIO())
        used = {name.removeprefix("cmdstat_") for name in admin.info("commandstats")}
        assert not {"keys", "flushdb", "flushall"} & used, used
        assert admin.execute_command("ACL", "LOG") == []  # the app was refused nothing
        as_app = redis.Redis(host=server.host, port=server.port, username="app", password=PASSWORD)
        for forbidden in (as_app.flushdb, as_app.flushall, lambda: as_app.keys("*")):
            with pytest.raises(redis.exceptions.NoPermissionError):
                forbidden()
        as_app.close()
    assert len(admin.execute_command("ACL", "LOG")) == 3  # the recipe does deny them


@pytest.mark.parametrize("alias", ALIASES)
def test_password_from_the_environment_never_shows(
    acl_server: tuple[servers.Server, redis.Redis],
    alias: str,
    stores: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, _ = acl_server
    monkeypatch.setenv("REDIS_PASSWORD", PASSWORD)
    configured = app_caches(server.url, os.environ["REDIS_PASSWORD"])
    assert PASSWORD not in configured[alias]["LOCATION"]
    with override_settings(CACHES={**stores, **configured}):
        svc = CacheService(unique_namespace("pw"), default_ttl=60, cache=alias)
        assert svc.set("k", 1)
        shown = [repr(svc), json.dumps(svc.stats(), default=str)]
        out = io.StringIO()
        call_command(
            "cache_namespaces", "stats", svc.namespace, "--cache", alias, stdout=out, stderr=out
        )
        shown.append(out.getvalue())
        svc.clear()
        server.stop()
        with pytest.raises(CacheUnavailable) as down:
            svc.get("k")
        shown += [str(down.value), repr(down.value.__cause__)]
    for text in shown:
        assert PASSWORD not in text, text


@pytest.fixture
def json_caches(redis_server: servers.Server, stores: dict[str, Any]) -> Iterator[str]:
    alias = "json"
    configured = {
        alias: {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"{redis_server.url}/3",
            "KEY_PREFIX": "js",
            "OPTIONS": {"SERIALIZER": "django_redis.serializers.json.JSONSerializer"},
        }
    }
    with override_settings(CACHES={**stores, **configured}):
        yield alias


def test_json_serializer_indexes_incr_pop(json_caches: str, redis_server: servers.Server) -> None:
    svc = CacheService(unique_namespace("json"), default_ttl=60, cache=json_caches)
    user = {"email": "a@b.c", "roles": ["x", "y"], "n": 1.5, "ok": True, "none": None}
    assert svc.set("u1", user, indexes={"email": "a@b.c"})
    assert svc.set("u2", {"email": "a@b.c"}, indexes={"email": "a@b.c"})
    assert svc.get("u1") == user
    assert svc.get_by_index("email", "a@b.c") == {"u1": user, "u2": {"email": "a@b.c"}}
    assert svc.incr("hits") == 1
    assert svc.incr("hits", 10) == 11
    assert svc.get("hits") == 11
    assert svc.pop("u2") == {"email": "a@b.c"}
    assert svc.find("email", "a@b.c") == ["u1"]
    assert svc.get_or_set("computed", lambda: [1, 2]) == [1, 2]
    with pytest.raises(ValueError, match=svc.namespace):
        svc.set("bad", {1, 2, 3})  # a set is not JSON
    assert svc.get("u1") == user  # nothing else changed
    # What the store holds is JSON, not pickle; plain Django reads it through make_key.
    plain = caches[json_caches]
    stored = plain.make_key(svc.make_key("u1"))
    with redis.Redis(host=redis_server.host, port=redis_server.port, db=3) as raw:
        assert json.loads(raw.get(stored)) == user
        assert raw.get(plain.make_key(svc.make_key("hits"))) == b"11"
    assert plain.get(svc.make_key("u1")) == user

    async def twins() -> None:
        assert await svc.aset("u3", {"k": "v"}, indexes={"email": "z@z"})
        assert await svc.aget_by_index("email", "z@z") == {"u3": {"k": "v"}}
        assert await svc.aincr("hits") == 12
        assert await svc.apop("u3") == {"k": "v"}
        await svc.aclose()

    asyncio.run(twins())
    assert svc.get("hits") == 12
    svc.clear()
