"""``agenthub_cache.testing``: the plugin in a project of its own (pytester), and the helpers.

The pytester runs are subprocesses (Django can be set up once per process): an inner project
with LocMem, database and Redis (this suite's private server, a database number of its own)
aliases, run once plainly and once under pytest-xdist with two workers.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.test import SimpleTestCase
from django.test.utils import override_settings

from agenthub_cache import CacheService, namespaces
from agenthub_cache.testing import (
    CacheClock,
    IsolatedNamespacesMixin,
    NamespaceIsolation,
    assert_indexed,
    assert_not_indexed,
    isolate_namespaces,
    override_namespaces,
)
from agenthub_cache.testing.isolation import new_tag
from tests import servers
from tests.conftest import unique_namespace

pytest_plugins = ("pytester",)

#: The Redis database the inner projects use on this suite's server (no other test uses it).
INNER_DB = 12

INNER_SETTINGS = """
import os
SECRET_KEY = "inner"
USE_TZ = True
INSTALLED_APPS = ["django.contrib.contenttypes", "agenthub_cache"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "db": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "inner_cache"},
    "files": {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": os.path.abspath("inner_files"),
    },
    "redis": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": os.environ["INNER_REDIS_URL"],
        "KEY_PREFIX": "inner",
    },
}
AGENTHUB_CACHE = {
    "CACHE": "redis",
    "NAMESPACES": {
        "signup": {"TTL": 600},
        "local": {"CACHE": "default"},
        "rows": {"CACHE": "db"},
        "blobs": {"CACHE": "files"},
    },
}
"""

#: Each test would fail if another test's data (this run's, or another worker's) were visible.
INNER_TESTS = """
import pytest
from django.core.cache import caches
from django.test import SimpleTestCase
from agenthub_cache import namespaces
from agenthub_cache.testing import IsolatedNamespacesMixin

@pytest.mark.parametrize("run", range(6))
@pytest.mark.parametrize("name", ["signup", "local", "rows"])
def test_each_test_sees_only_its_own(isolated_namespaces, name, run):
    service = namespaces[name]
    assert service.keys() == []
    service.set("k", run, indexes={"user": "42"})
    assert service.find("user", "42") == ["k"]
    assert isolated_namespaces.tag in caches[service.cache_alias].key_prefix

@pytest.mark.django_db
def test_clock_expires_on_locmem_db_and_files(isolated_namespaces, cache_clock):
    names = ("local", "rows", "blobs")
    for name in names:
        namespaces[name].set("k", 1, ttl=60)
    cache_clock.advance(59)
    assert [namespaces[name].get("k") for name in names] == [1, 1, 1]
    cache_clock.advance(2)
    assert [namespaces[name].get("k") for name in names] == [None, None, None]

class MixinTests(IsolatedNamespacesMixin, SimpleTestCase):
    databases = {"default"}

    def test_one(self):
        self.assertEqual(namespaces["signup"].keys(), [])
        namespaces["signup"].set("mixin", 1)

    def test_two(self):
        self.assertEqual(namespaces["signup"].keys(), [])
        namespaces["signup"].set("mixin", 2)
"""


@pytest.fixture
def inner_project(
    pytester: pytest.Pytester, redis_server: servers.Server, monkeypatch: pytest.MonkeyPatch
) -> redis.Redis:
    pytester.makepyfile(inner_settings=INNER_SETTINGS)
    pytester.makepyfile(test_inner=INNER_TESTS)
    pytester.makeini(
        "[pytest]\nDJANGO_SETTINGS_MODULE = inner_settings\npythonpath = .\n"
        "asyncio_default_fixture_loop_scope = function\nfilterwarnings = error\n"
    )
    url = f"{redis_server.url}/{INNER_DB}"
    monkeypatch.setenv("INNER_REDIS_URL", url)
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "inner_settings")  # pytest-django set ours
    client = redis.Redis.from_url(url)
    client.flushdb()  # our own server, and a database no other test uses
    return client


def test_plugin_isolates_and_flushes(pytester: pytest.Pytester, inner_project: redis.Redis) -> None:
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=21)
    assert inner_project.dbsize() == 0, inner_project.keys()  # flushed after each test


@pytest.mark.extended
def test_plugin_isolates_xdist_workers_on_one_redis(
    pytester: pytest.Pytester, inner_project: redis.Redis
) -> None:
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2")
    result.assert_outcomes(passed=21)
    assert inner_project.dbsize() == 0, inner_project.keys()


@pytest.mark.extended
def test_plugin_is_inert_without_django(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Installed, the plugin loads in every pytest run: one without Django must not notice."""
    pytester.makepyfile(test_plain="def test_plain():\n    assert True\n")
    pytester.makeini(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\nfilterwarnings = error\n"
    )
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE")
    result = pytester.runpytest_subprocess("-p", "no:django", "--fixtures")
    assert result.ret == 0, result.stderr.str()
    result.stdout.fnmatch_lines(["*isolated_namespaces*", "*cache_clock*"])


# -- override_namespaces --------------------------------------------------------------------


def test_override_namespaces_as_context_manager() -> None:
    with override_settings(AGENTHUB_CACHE={"CACHE": "locmem", "NAMESPACES": {"a": {"TTL": 5}}}):
        before = namespaces["a"]
        with override_namespaces(a={"FAIL_SILENTLY": True}, b={"TTL": 7, "CACHE": "db"}):
            assert namespaces["a"] is not before  # rebuilt
            assert (namespaces["a"].default_ttl, namespaces["a"].fail_silently) == (5, True)
            assert (namespaces["b"].default_ttl, namespaces["b"].cache_alias) == (7, "db")
        assert "b" not in namespaces
        assert namespaces["a"].fail_silently is False


@override_namespaces({"my.feature": {"TTL": 11}}, signup=None)
def test_override_namespaces_as_decorator() -> None:
    assert namespaces["my.feature"].default_ttl == 11
    assert "signup" not in namespaces


def test_override_namespaces_on_a_coroutine() -> None:
    @override_namespaces(temp={"TTL": 3})
    async def check() -> int | None:
        return namespaces["temp"].default_ttl

    assert asyncio.run(check()) == 3
    assert namespaces["temp"].default_ttl == 60


def test_override_namespaces_bad_option_is_reported() -> None:
    with (
        override_namespaces(signup={"TLL": 5}),
        pytest.raises(ImproperlyConfigured, match=r"agenthub_cache\.E006"),
    ):
        namespaces["signup"]


# -- assertions and the clock, in this process ----------------------------------------------


@pytest.fixture
def indexed(stores: dict[str, Any]) -> CacheService:
    service = CacheService(unique_namespace("kit"), default_ttl=60, cache="locmem")
    service.set("u1", {"name": "Ann"}, indexes={"email": "a@example.com"})
    service.set("u2", {"name": "Bob"}, indexes={"email": "b@example.com"})
    return service


def test_assert_indexed_passes_and_fails_readably(indexed: CacheService) -> None:
    assert_indexed(indexed, "u1", index="email", value="a@example.com")
    assert_indexed(indexed, "u1", index="email", value="a@example.com", stored={"name": "Ann"})
    assert_not_indexed(indexed, "u1", index="email", value="b@example.com")
    with pytest.raises(AssertionError) as info:
        assert_indexed(indexed, "u1", index="email", value="b@example.com")
    assert str(info.value) == (
        f"Cache namespace {indexed.namespace!r}: key 'u1' is not filed under index 'email' = "
        "'b@example.com'; the key exists, and 1 key(s) filed there: ['u2']."
    )
    with pytest.raises(AssertionError, match="holds \\{'name': 'Ann'\\}, not 'x'"):
        assert_indexed(indexed, "u1", index="email", value="a@example.com", stored="x")
    with pytest.raises(AssertionError, match=r"is filed under index .email.*should not be"):
        assert_not_indexed(indexed, "u2", index="email", value="b@example.com")
    with pytest.raises(AssertionError, match=r"does not exist.*nothing is filed there"):
        assert_indexed(indexed, "gone", index="email", value="c@example.com")


@pytest.mark.parametrize("alias", ["locmem", "db", "files"])
def test_clock_moves_only_when_told(stores: dict[str, Any], alias: str) -> None:
    """On every store that expires by the clock in this process (README: LocMem, database and
    file caches), with the app's index records on it."""
    service = CacheService(unique_namespace("kit"), default_ttl=60, cache=alias)
    with CacheClock() as clock:
        service.set("k", 1, indexes={"i": "v"})
        clock.advance(30)
        assert service.ttl("k") == 30
        clock.advance(31)
        assert service.get("k") is None
        assert service.find("i", "v") == []
        assert not service.has_key("k")
        assert service.add("k", 3, ttl=10)  # the expired entry does not block add()
        assert service.incr("n", ttl=10) == 1
        service.set_many({"a": 1, "b": 2}, ttl=10)
        assert service.touch("a", 100)
        assert service.get_or_set("g", 5, ttl=10) == 5
        clock.advance(11)
        assert service.get_many(["k", "a", "b", "g"]) == {"a": 1}
        assert service.incr("n", ttl=10) == 1  # a new window
        assert service.get_or_set("g", 6, ttl=10) == 6
        with pytest.raises(ValueError, match="backwards"):
            clock.advance(-1)
    service.set("k", 2, ttl=1)
    assert service.get("k") == 2  # the real clock is back


def test_isolate_namespaces_in_process(stores: dict[str, Any]) -> None:
    name = unique_namespace("kit")
    with override_settings(AGENTHUB_CACHE={"CACHE": "redis", "NAMESPACES": {name: {}}}):
        namespaces[name].set("outside", 1)
        with isolate_namespaces() as isolation:
            assert isolation.prefixes["redis"] == f"dr.{isolation.tag}"
            assert namespaces[name].keys() == []
            namespaces[name].set("inside", 1)
        assert namespaces[name].keys() == ["outside"]
        namespaces[name].clear()


def _redis_keys_tagged(stores: dict[str, Any], tag: str) -> list[bytes]:
    client = redis.Redis.from_url(stores["redis"]["LOCATION"])
    return sorted(client.scan_iter(f"*{tag}*"))


def test_isolate_namespaces_decorates_a_coroutine(stores: dict[str, Any]) -> None:
    """The isolation spans the awaited body, and the flush comes after it (async API)."""
    name = unique_namespace("kit")
    tag = new_tag()
    seen: dict[str, Any] = {}

    @isolate_namespaces(tag)
    async def decorated() -> None:
        await asyncio.sleep(0)  # the body runs after the coroutine was created
        seen["prefix"] = caches["redis"].key_prefix
        seen["before"] = await namespaces[name].akeys()
        await namespaces[name].aset("inside", 1, indexes={"i": "v"})
        seen["stored"] = _redis_keys_tagged(stores, tag)

    with override_settings(AGENTHUB_CACHE={"CACHE": "redis", "NAMESPACES": {name: {}}}):
        namespaces[name].set("outside", 1)
        asyncio.run(decorated())
        assert seen["prefix"] == f"dr.{tag}"
        assert seen["before"] == []  # "outside" is not visible in the isolated prefix
        assert seen["stored"], "the body stored nothing under the private prefix"
        assert _redis_keys_tagged(stores, tag) == []  # flushed after the body ran
        assert namespaces[name].keys() == ["outside"]
        assert caches["redis"].key_prefix == "dr"
        namespaces[name].clear()


@isolate_namespaces()
async def test_isolate_namespaces_on_an_async_test() -> None:
    """The decorator on a test collected by pytest-asyncio."""
    assert caches["default"].key_prefix not in ("", None)
    assert await namespaces["temp"].akeys() == []
    await namespaces["temp"].aset("mine", 1)


async def test_isolate_namespaces_async_with(stores: dict[str, Any]) -> None:
    name = unique_namespace("kit")
    with override_settings(AGENTHUB_CACHE={"CACHE": "redis", "NAMESPACES": {name: {}}}):
        async with isolate_namespaces() as isolation:
            assert caches["redis"].key_prefix == f"dr.{isolation.tag}"
            await namespaces[name].aset("inside", 1)
        assert _redis_keys_tagged(stores, isolation.tag) == []


@isolate_namespaces()
class IsolateNamespacesOnATestCase(SimpleTestCase):
    namespace_isolation: NamespaceIsolation

    def test_each_test_its_own_tag(self) -> None:
        assert caches["default"].key_prefix == self.namespace_isolation.tag
        assert namespaces["temp"].keys() == []
        namespaces["temp"].set("mine", 1)

    def test_again(self) -> None:
        self.test_each_test_its_own_tag()


# -- the README's examples, with the plugin's fixtures in this very suite ----------------------


def test_readme_signup(isolated_namespaces: Any) -> None:
    namespaces["signup"].set("u1", {"name": "Ann"}, indexes={"email": "a@example.com"})
    assert_indexed("signup", "u1", index="email", value="a@example.com", stored={"name": "Ann"})
    assert_not_indexed("signup", "u1", index="email", value="b@example.com")
    assert isolated_namespaces.prefixes == {"default": isolated_namespaces.tag}


def test_readme_expiry(isolated_namespaces: Any, cache_clock: CacheClock) -> None:
    namespaces["confirmation"].set("token", 1)  # TTL 300
    cache_clock.advance(301)
    assert namespaces["confirmation"].get("token") is None


@override_namespaces({"my.feature": {"CACHE": "redis"}}, signup={"TTL": 5}, temp=None)
def test_readme_with_other_namespaces() -> None:
    assert namespaces["signup"].default_ttl == 5
    assert namespaces["my.feature"].cache_alias == "redis"


@override_namespaces(signup={"TTL": 9})
class OverrideOnATestCase(SimpleTestCase):
    def test_class_decorator(self) -> None:
        assert namespaces["signup"].default_ttl == 9


class MixinInProcess(IsolatedNamespacesMixin, SimpleTestCase):
    def test_isolated(self) -> None:
        assert caches["default"].key_prefix == self.namespace_isolation.tag
        assert namespaces["temp"].keys() == []
        namespaces["temp"].set("mine", 1)
