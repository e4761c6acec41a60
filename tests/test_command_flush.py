"""``cache_namespaces flush``: it drops the named namespaces and nothing else, after asking.

Every test compares a dump of the whole store (every key, not just ours) before and after, so
a flush that reached a neighbour, an undeclared namespace or a plain ``caches[alias]`` key fails.
The confirmation prompt is answered on a real pseudo-terminal (``pty``) by a real subprocess.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import caches
from django.core.management import CommandError, call_command
from django.test.utils import override_settings

from agenthub_cache import CacheService, namespaces
from agenthub_cache.management import render
from tests import servers
from tests.command_support import (
    SHARED,
    cli,
    cli_on_terminal,
    cli_stderr_on_terminal,
    cli_stdin_closed,
    declared,
    dump,
    run,
)
from tests.conftest import unique_namespace

ALIASES = ["locmem", "db", "redis", "redis_django"]


@dataclass
class Scene:
    """Two declared namespaces to flush, and canaries that every flush must leave alone."""

    alias: str
    main: CacheService
    second: CacheService
    neighbour: CacheService  # declared too, never named in a flush (except --all)
    ad_hoc: CacheService  # on the same alias, not declared
    plain_key: str  # set through caches[alias] directly

    def fill(self) -> None:
        for service in (self.main, self.second, self.neighbour, self.ad_hoc):
            service.set("a", {"v": 1}, indexes={"email": "a@b.c"})
            service.set("b", 2, indexes={"email": "b@b.c"})
            service.set("c", 3)
        caches[self.alias].set(self.plain_key, "plain", 300)

    def canaries_intact(self, *, neighbour: bool = True) -> None:
        survivors = [self.ad_hoc, self.neighbour] if neighbour else [self.ad_hoc]
        for service in survivors:
            assert sorted(service.keys()) == ["a", "b", "c"], service
            assert service.find("email", "a@b.c") == ["a"]
            assert service.get("a") == {"v": 1}
        assert caches[self.alias].get(self.plain_key) == "plain"

    def gone(self, service: CacheService) -> None:
        assert service.keys() == []
        assert service.find("email", "a@b.c") == []
        assert service.get("a") is None


def scene_for(alias: str) -> Iterator[Scene]:
    main, second, neighbour, ad_hoc = (unique_namespace(s) for s in ("fl", "fl2", "nbr", "adhoc"))
    with declared(
        {
            main: {"TTL": 300, "CACHE": alias},
            second: {"TTL": 300, "CACHE": alias},
            neighbour: {"TTL": 300, "CACHE": alias},
        },
        cache=alias,
    ):
        scene = Scene(
            alias,
            namespaces[main],
            namespaces[second],
            namespaces[neighbour],
            CacheService(ad_hoc, default_ttl=300, cache=alias),
            unique_namespace("plain"),
        )
        scene.fill()
        yield scene
        for service in (scene.main, scene.second, scene.neighbour, scene.ad_hoc):
            service.clear()
        caches[alias].delete(scene.plain_key)


@pytest.fixture(params=ALIASES)
def scene(request: pytest.FixtureRequest) -> Iterator[Scene]:
    yield from scene_for(request.param)


@pytest.fixture(params=SHARED)
def shared_scene(request: pytest.FixtureRequest) -> Iterator[Scene]:
    """A scene on a store that a subprocess reaches too."""
    yield from scene_for(request.param)


def without(store: dict[Any, Any], *services: CacheService) -> dict[Any, Any]:
    """``store`` minus the stored keys of ``services`` (their namespace names are unique)."""
    names = [s.namespace for s in services]
    return {k: v for k, v in store.items() if not any(n in _text(k) for n in names)}


def _text(key: Any) -> str:
    return key.decode() if isinstance(key, bytes) else str(key)


# -- through call_command --------------------------------------------------------------------


def test_flush_one_namespace_and_nothing_else(scene: Scene) -> None:
    before = dump(scene.alias)
    result = run("flush", scene.main.namespace, interactive=False)
    scene.gone(scene.main)
    assert dump(scene.alias) == without(before, scene.main)
    scene.canaries_intact()
    assert sorted(scene.second.keys()) == ["a", "b", "c"]
    assert "About to flush 1 namespace:" in result.out
    assert f"Namespace {scene.main.namespace!r}" in result.out
    assert "entries   3" in result.out
    assert (
        f"Flushed namespace {scene.main.namespace!r} on cache {scene.alias!r}: dropped 3 entries in"
        in result.out
    )


def test_flush_several_names_once_each(scene: Scene) -> None:
    before = dump(scene.alias)
    names = (scene.main.namespace, scene.second.namespace, scene.main.namespace)
    result = run("flush", *names, "--no-input")
    scene.gone(scene.main)
    scene.gone(scene.second)
    assert dump(scene.alias) == without(before, scene.main, scene.second)
    scene.canaries_intact()
    assert result.out.count("Flushed namespace") == 2
    assert "Flushed 2 namespaces: dropped 6 entries in" in result.out


def test_flush_all_flushes_every_declared_namespace_and_nothing_else(scene: Scene) -> None:
    before = dump(scene.alias)
    result = run("flush", "--all", "--noinput", "--format", "json")
    for service in (scene.main, scene.second, scene.neighbour):
        scene.gone(service)
    assert dump(scene.alias) == without(before, scene.main, scene.second, scene.neighbour)
    scene.canaries_intact(neighbour=False)
    flushed = {row["namespace"] for row in result.json()["namespaces"]}
    assert flushed == {scene.main.namespace, scene.second.namespace, scene.neighbour.namespace}


def test_flush_json_shape(scene: Scene) -> None:
    document = run("flush", scene.main.namespace, interactive=False, format="json").json()
    assert set(document) == {"dry_run", "namespaces", "dropped", "seconds"}
    assert document["dry_run"] is False
    assert document["dropped"] == 3
    (row,) = document["namespaces"]
    assert set(row) == {
        "namespace", "cache", "backend", "location", "entries", "dropped", "seconds",
    }  # fmt: skip
    assert row["namespace"] == scene.main.namespace
    assert row["cache"] == scene.alias
    assert row["backend"] == scene.main.provider.describe()["backend"]
    assert row["entries"] == 3
    assert row["dropped"] == 3
    assert row["seconds"] >= 0


def test_dry_run_changes_nothing(scene: Scene) -> None:
    before = dump(scene.alias)
    result = run("flush", scene.main.namespace, scene.second.namespace, "--dry-run")
    assert dump(scene.alias) == before
    assert f"Namespace {scene.main.namespace!r} (dry run)" in result.out
    assert "3 would be dropped" in result.out
    assert "sample keys  'a', 'b', 'c'" in result.out
    assert "Dry run: nothing was flushed." in result.out
    document = run("flush", scene.main.namespace, dry_run=True, format="json").json()
    assert dump(scene.alias) == before
    assert set(document) == {"dry_run", "namespaces"}
    assert document["dry_run"] is True
    (row,) = document["namespaces"]
    assert set(row) == {
        "namespace", "cache", "backend", "location", "entries", "listable", "sample_keys",
    }  # fmt: skip
    assert row["entries"] == 3
    assert row["listable"] is True
    assert row["sample_keys"] == ["a", "b", "c"]


def test_dry_run_samples_at_most_five_keys(scene: Scene) -> None:
    scene.main.set_many({f"k{i:02}": i for i in range(20)})
    document = run("flush", scene.main.namespace, dry_run=True, format="json").json()
    assert document["namespaces"][0]["entries"] == 23
    assert len(document["namespaces"][0]["sample_keys"]) == 5


def test_flush_refuses_when_stdin_is_not_a_terminal(scene: Scene) -> None:
    before = dump(scene.alias)
    for stdin in (io.StringIO("yes\n"), None):
        options = {} if stdin is None else {"stdin": stdin}
        with pytest.raises(CommandError, match="no terminal to ask on"):
            run("flush", scene.main.namespace, **options)
    with pytest.raises(CommandError, match="no terminal to ask on"):
        run("flush", "--all")
    assert dump(scene.alias) == before


def test_flush_argument_mistakes_touch_nothing(scene: Scene) -> None:
    before = dump(scene.alias)
    mistakes: list[tuple[tuple[str, ...], dict[str, Any], str]] = [
        (("flush",), {}, "Name the namespaces to flush"),
        (("flush", scene.main.namespace), {"all": True}, "not both"),
        (("flush",), {"all": True, "cache": scene.alias}, "name it instead"),
        (("flush", scene.main.namespace, "nope"), {}, "Unknown cache namespace 'nope'"),
        (("flush", scene.main.namespace), {"cache": "nowhere"}, "not an alias in settings.CACHES"),
        (("flush", scene.main.namespace), {"format": "yaml"}, "--format must be one of"),
    ]
    for args, options, message in mistakes:
        with pytest.raises(CommandError, match=message):
            run(*args, interactive=False, **options)
    assert dump(scene.alias) == before


def test_flush_is_silent_at_verbosity_0(scene: Scene) -> None:
    result = run("flush", scene.main.namespace, interactive=False, verbosity=0)
    assert result.out == ""
    assert result.err == ""
    scene.gone(scene.main)


def test_flush_an_ad_hoc_namespace_with_cache(scene: Scene) -> None:
    before = dump(scene.alias)
    run("flush", scene.ad_hoc.namespace, cache=scene.alias, interactive=False)
    scene.gone(scene.ad_hoc)
    assert dump(scene.alias) == without(before, scene.ad_hoc)
    assert sorted(scene.main.keys()) == ["a", "b", "c"]


def test_flush_with_nothing_declared() -> None:
    with declared({}), pytest.raises(CommandError, match="nothing to flush"):
        run("flush", "--all", interactive=False)


class TerminalStringIO(io.StringIO):
    """Captured stderr that says it is a terminal, for the in-process progress test."""

    def isatty(self) -> bool:
        return True


def test_progress_on_a_terminal_for_big_flushes_in_process() -> None:
    name = unique_namespace("big")
    with declared({name: {"TTL": 300, "CACHE": "locmem"}}):
        namespaces[name].set_many({f"k{i}": i for i in range(12_000)})
        err = TerminalStringIO()
        out = io.StringIO()
        call_command("cache_namespaces", "flush", name, interactive=False, stdout=out, stderr=err)
        assert f"\r  flushing {name}: 12,000 of ~12,000 entries (100%)" in err.getvalue()
        assert err.getvalue().endswith("\n")
        assert "dropped 12,000 entries" in out.getvalue()
        assert namespaces[name].count() == 0


def test_no_progress_for_small_flushes_or_off_a_terminal(scene: Scene) -> None:
    err = TerminalStringIO()
    call_command(
        "cache_namespaces", "flush", scene.main.namespace, interactive=False, stderr=err,
        stdout=io.StringIO(),
    )  # fmt: skip
    assert "flushing" not in err.getvalue()


# -- the provider's progress keyword ----------------------------------------------------------


@pytest.mark.parametrize("alias", ["locmem", "db"])
def test_listing_clear_reports_progress_in_batches(alias: str) -> None:
    service = CacheService(unique_namespace("prog"), cache=alias)
    service.set_many({f"k{i}": i for i in range(2_500)})
    calls: list[int] = []
    assert service.clear(progress=calls.append) == 2_500
    # one call per batch of 1,000 stored keys (the DB cache's lock row is one of them)
    assert len(calls) == 3
    assert calls == sorted(calls)
    assert calls[-1] == 2_500
    assert service.count() == 0


async def test_aclear_reports_progress() -> None:
    service = CacheService(unique_namespace("aprog"), cache="locmem")
    await service.aset_many({f"k{i}": i for i in range(1_500)})
    calls: list[int] = []
    assert await service.aclear(progress=calls.append) == 1_500
    assert calls == [1_000, 1_500]


# -- stores that cannot list, and stores that are down -------------------------------------------


def generation_aliases() -> list[str]:
    return ["files", "memcached"]


@pytest.fixture(params=generation_aliases())
def generation_alias(request: pytest.FixtureRequest, stores: dict[str, Any]) -> str:
    alias: str = request.param
    if alias not in stores:
        pytest.skip("memcached is not installed; its command tests did not run")
    return alias


def test_stores_that_cannot_list(generation_alias: str) -> None:
    name, other = unique_namespace("gen"), unique_namespace("gen2")
    with declared({name: {"TTL": 300, "CACHE": generation_alias}, other: {"TTL": 300}}, cache="db"):
        service = namespaces[name]
        service.set("k", {"v": 1}, indexes={"tag": "t"})
        namespaces[other].set("k", "survives")
        listing = {r["namespace"]: r for r in run("list", format="json").json()["namespaces"]}
        assert listing[name]["entries"] is None
        assert listing[name]["error"] is None
        assert " n/a " in run("list").out
        assert "n/a: the store cannot count" in run("list").out
        with pytest.raises(CommandError, match=r"cannot list its keys.*'get NAME KEY'"):
            run("keys", name)
        assert run("stats", name, format="json").json()["entries"] is None
        document = run("get", name, "k", format="json").json()
        assert document["value"] == {"v": 1}
        if not service.capabilities.ttl:
            assert document["ttl_known"] is False
            assert "unknown (the store cannot tell)" in run("get", name, "k").out
        assert run("find", name, "tag", "t").out.splitlines() == ["k"]
        dry = run("flush", name, dry_run=True)
        assert "unknown: this store cannot count" in dry.out
        assert service.get("k") == {"v": 1}
        dry_json = run("flush", name, dry_run=True, format="json").json()["namespaces"][0]
        assert dry_json["listable"] is False
        assert dry_json["entries"] is None
        result = run("flush", name, interactive=False)
        assert "by starting a new generation" in result.out
        assert service.get("k") is None
        assert run("find", name, "tag", "t").out == ""
        assert namespaces[other].get("k") == "survives"
        namespaces[other].clear()


def test_a_store_that_is_down() -> None:
    port = servers.free_port()
    dead = {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": f"redis://:pw@127.0.0.1:{port}/0",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
    }
    up, down, quiet = unique_namespace("up"), unique_namespace("down"), unique_namespace("q")
    with (
        override_settings(CACHES={**settings.CACHES, "dead": dead}),
        declared(
            {
                up: {"TTL": 60, "CACHE": "db", "FAIL_SILENTLY": True},
                down: {"TTL": 60, "CACHE": "dead"},
                quiet: {"TTL": 60, "CACHE": "dead", "FAIL_SILENTLY": True},
            }
        ),
    ):
        out = io.StringIO()
        with pytest.raises(
            CommandError, match=r"Could not read the store of 2 namespaces"
        ) as raised:
            call_command("cache_namespaces", "list", stdout=out, stderr=io.StringIO())
        rows = {line.split()[0]: line.split() for line in out.getvalue().splitlines()[1:]}
        assert set(rows) == {up, down, quiet}  # every namespace is printed, the down ones too
        assert rows[down][5] == rows[quiet][5] == "error"
        assert rows[up][5] != "error"
        # One error per store, the namespaces under it named once: not the same line per namespace
        message = str(raised.value)
        assert message.count("'dead' cache, for") == 1
        assert message.count("unavailable") == 1
        assert f"'{down}', '{quiet}'" in message
        assert up not in message
        assert "1 cache alias" in message
        listing = io.StringIO()
        with pytest.raises(CommandError):
            call_command("cache_namespaces", "list", format="json", stdout=listing)
        by_name = {r["namespace"]: r for r in json.loads(listing.getvalue())["namespaces"]}
        assert set(by_name) == {up, down, quiet}
        assert by_name[up]["error"] is None
        for name in (down, quiet):  # the JSON names the error of each namespace
            assert name in by_name[name]["error"]
            assert "unavailable" in by_name[name]["error"]
            assert by_name[name]["entries"] is None
        assert run("stats", up, format="json").json()["fail_silently"] is True
        # FAIL_SILENTLY keeps an outage from the site, never from an operator
        for args in (
            ("stats", down),
            ("keys", down),
            ("get", down, "k"),
            ("flush", down),
            ("get", quiet, "k"),
            ("delete", quiet, "k"),
            ("find", quiet, "email", "a@b.c"),
            ("prune", quiet),
        ):
            with pytest.raises(CommandError) as raised:
                run(*args, interactive=False)
            message = str(raised.value)
            assert "unavailable" in message
            assert f"redis://:********@127.0.0.1:{port}/0" in message
            assert ":pw@" not in message


@contextmanager
def dead_memcached(*names: str) -> Iterator[None]:
    """``names`` declared on a memcached that nothing listens to (a fresh client each time:
    pymemcache's HashClient reports a dead server once, then answers defaults for 60 s)."""
    dead = {
        "BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache",
        "LOCATION": f"127.0.0.1:{servers.free_port()}",
        "OPTIONS": {"connect_timeout": 0.5, "timeout": 0.5},
    }
    with (
        override_settings(CACHES={**settings.CACHES, "dead_memcached": dead}),
        declared({name: {"TTL": 60, "CACHE": "dead_memcached"} for name in names}),
    ):
        yield


def test_list_reports_a_down_store_that_cannot_count() -> None:
    """memcached cannot count, so ``list`` shows n/a for it; an outage must not look like that."""
    down = unique_namespace("down")
    with dead_memcached(down):
        out = io.StringIO()
        with pytest.raises(
            CommandError, match=rf"(?s)Could not read the store of 1 namespace .*{down}"
        ) as raised:
            call_command("cache_namespaces", "list", stdout=out, stderr=io.StringIO())
        assert "refused. Check that the store at 127.0.0.1:" in str(raised.value)
        assert out.getvalue().splitlines()[1].split()[5] == "error"
    with dead_memcached(down):
        out = io.StringIO()
        with pytest.raises(CommandError, match=down):
            call_command("cache_namespaces", "list", format="json", stdout=out)
        (row,) = json.loads(out.getvalue())["namespaces"]
        assert row["entries"] is None
        assert "unavailable" in row["error"]


def test_a_cache_backend_that_cannot_be_imported() -> None:
    """A BACKEND whose package is missing: a CommandError naming namespace and alias, no traceback."""
    broken = {"BACKEND": "agenthub_cache_no_such_package.Cache"}
    name = unique_namespace("imp")
    with (
        override_settings(CACHES={**settings.CACHES, "broken": broken}),
        declared({name: {"TTL": 60, "CACHE": "broken"}}),
    ):
        for args in (
            ("stats", name),
            ("get", name, "k"),
            ("flush", name),
            ("keys", "adhoc", "--cache", "broken"),
        ):
            with pytest.raises(CommandError) as raised:
                run(*args, interactive=False)
            message = str(raised.value)
            assert "cache cannot be loaded" in message
            assert "'broken'" in message
            assert "settings.CACHES['broken']['BACKEND']" in message
        with pytest.raises(
            CommandError, match=rf"'{name}': Cache namespace '{name}': the 'broken'"
        ):
            run("list")


def test_a_location_the_client_cannot_read() -> None:
    """The client's own ValueError gets the namespace and alias in front of it."""
    bad = {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": "redis://127.0.0.1:port/0"}
    with (
        override_settings(CACHES={**settings.CACHES, "bad_location": bad}),
        pytest.raises(CommandError) as raised,
    ):
        run("stats", "adhoc", cache="bad_location")
    message = str(raised.value)
    assert message.startswith("Cache namespace 'adhoc': the 'bad_location' cache cannot be set up:")
    assert message.endswith("(given with --cache bad_location)")


# -- passwords never shown --------------------------------------------------------------------


@pytest.fixture(scope="module")
def password_redis() -> Iterator[servers.Server]:
    server = servers.redis_server(None, "--requirepass", "s3cret-pw").start()
    yield server
    server.stop()


def test_location_password_is_masked(password_redis: servers.Server) -> None:
    location = f"redis://default:s3cret-pw@127.0.0.1:{password_redis.port}/0"
    locked = {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": location}
    name = unique_namespace("pw")
    with (
        override_settings(CACHES={**settings.CACHES, "locked": locked}),
        declared({name: {"TTL": 60, "CACHE": "locked"}}),
    ):
        namespaces[name].set("k", 1)
        outputs = [
            run("stats", name).out,
            run("stats", name, format="json").out,
            run("flush", name, dry_run=True).out,
            run("flush", name, dry_run=True, format="json").out,
            run("flush", name, interactive=False).out,
        ]
        masked = f"redis://default:********@127.0.0.1:{password_redis.port}/0"
        for output in outputs:
            assert "s3cret" not in output
            assert masked in output
        assert namespaces[name].keys() == []
        caches["locked"].close()


@pytest.mark.parametrize(
    ("location", "shown"),
    [
        ("redis://u:p@h:6379/1", "redis://u:********@h:6379/1"),
        ("redis://u:p@ss@h:6379/1", "redis://u:********@h:6379/1"),
        ("redis://a:b@h1,redis://c:d@h2/0", "redis://a:********@h1,redis://c:********@h2/0"),
        ("redis://:p@h:6379/1", "redis://:********@h:6379/1"),
        ("rediss://token@h/0", "rediss://********@h/0"),
        ("redis://h:6379/0?password=p&db=1", "redis://h:6379/0?password=********&db=1"),
        (["redis://a:b@h1", "redis://h2"], "redis://a:********@h1, redis://h2"),
        ("127.0.0.1:11211", "127.0.0.1:11211"),
        ("/var/tmp/django_cache", "/var/tmp/django_cache"),
        ("unix:///run/redis.sock?password=x", "unix:///run/redis.sock?password=********"),
        # passwords that are not percent-encoded: redis-py reads up to the last "@"
        ("redis://u:p w@h:6379/0", "redis://u:********@h:6379/0"),
        ("redis://:ab/cd+e==@h:6379/0", "redis://:********@h:6379/0"),
        ("redis://:p?w#x@h/0", "redis://:********@h/0"),
        ("redis://:ab://cd@h/0", "redis://:********@h/0"),
        ("redis://:a@h1;redis://:b@h2", "redis://:********@h1;redis://:********@h2"),
        ("redis://:a@h1, redis://:b@h2", "redis://:********@h1, redis://:********@h2"),
        ("unix://:pw@/run/redis.sock", "unix://:********@/run/redis.sock"),
        ("unix:///run/a@b.sock", "unix:///run/a@b.sock"),  # a path, not a password
        (None, ""),
    ],
)
def test_mask_location(location: object, shown: str) -> None:
    assert render.mask_location(location) == shown


# -- through a real subprocess: the prompt, no terminal, progress -----------------------------


def test_cli_yes_on_a_terminal_flushes(shared_scene: Scene) -> None:
    scene = shared_scene
    before = dump(scene.alias)
    result = cli_on_terminal("flush", scene.main.namespace, typed="yes\n")
    assert result.status == 0, result.err
    assert "About to flush 1 namespace:" in result.out
    assert "Type 'yes' to continue, or 'no' to cancel: " in result.out
    assert "dropped 3 entries" in result.out
    assert result.out.index("Type 'yes'") < result.out.index("dropped 3 entries")
    scene.gone(scene.main)
    assert dump(scene.alias) == without(before, scene.main)
    scene.canaries_intact()


@pytest.mark.parametrize("typed", ["no\n", "\n", "YES please\n", "y\n", "\x04"])
def test_cli_anything_but_yes_cancels(shared_scene: Scene, typed: str) -> None:
    before = dump(shared_scene.alias)
    result = cli_on_terminal("flush", shared_scene.main.namespace, typed=typed)
    assert result.status == 1
    assert "CommandError: Flush cancelled: nothing was flushed." in result.err
    assert "Traceback" not in result.err
    assert dump(shared_scene.alias) == before


def test_cli_refuses_without_a_terminal(shared_scene: Scene) -> None:
    before = dump(shared_scene.alias)
    for result in (
        cli("flush", shared_scene.main.namespace),  # stdin is /dev/null
        cli("flush", "--all"),
        cli_stdin_closed("flush", shared_scene.main.namespace),
    ):
        assert result.status == 1
        assert "no terminal to ask on" in result.err
        assert "--noinput" in result.err
        assert "Traceback" not in result.err
    assert dump(shared_scene.alias) == before


def test_cli_noinput_and_dry_run(shared_scene: Scene) -> None:
    scene = shared_scene
    before = dump(scene.alias)
    dry = cli("flush", scene.main.namespace, "--dry-run", "--format", "json")
    assert dry.status == 0, dry.err
    assert dry.json()["namespaces"][0]["entries"] == 3
    assert dump(scene.alias) == before
    done = cli("flush", scene.main.namespace, scene.second.namespace, "--no-input")
    assert done.status == 0, done.err
    assert "Flushed 2 namespaces: dropped 6 entries" in done.out
    assert dump(scene.alias) == without(before, scene.main, scene.second)
    scene.canaries_intact()
    everything = cli("flush", "--all", "--noinput", "-v", "0")
    assert everything.status == 0, everything.err
    assert everything.out == ""
    scene.gone(scene.neighbour)
    scene.canaries_intact(neighbour=False)


def test_cli_progress_on_a_terminal() -> None:
    name = unique_namespace("big")
    with declared({name: {"TTL": 300, "CACHE": "redis"}}, cache="redis"):
        service = namespaces[name]
        service.set_many({f"k{i}": i for i in range(12_000)})
        quiet = cli("flush", name, "--dry-run")
        assert "\r" not in quiet.err
        result = cli_stderr_on_terminal("flush", name, "--noinput")
        assert result.status == 0, result.err
        assert f"\r  flushing {name}: " in result.err
        assert "12,000 of ~12,000 entries (100%)" in result.err
        assert "dropped 12,000 entries" in result.out
        assert service.count() == 0


def test_cli_small_flush_shows_no_progress(shared_scene: Scene) -> None:
    result = cli_stderr_on_terminal("flush", shared_scene.main.namespace, "--noinput")
    assert result.status == 0
    assert "flushing" not in result.err
    shared_scene.gone(shared_scene.main)


def test_cli_notes_that_locmem_is_per_process() -> None:
    name = unique_namespace("loc")
    with declared({name: {"TTL": 60, "CACHE": "locmem"}}, cache="locmem"):
        result = cli("flush", name, "--noinput", "--skip-checks")
    assert result.status == 0, result.err
    assert "LocMemCache lives inside each process" in result.err
