"""``python -m django cache_namespaces ...`` as a real subprocess, stdin not a terminal.

What an operator types in a second terminal while the site runs: the subprocess has its own
memory, so these run on the stores it shares with the test process (the SQLite DB cache and
the private redis-server), with ``tests/command_settings.py`` pointing it at them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from agenthub_cache import CacheService, namespaces
from tests.command_support import SHARED, cli, declared
from tests.conftest import unique_namespace


@dataclass
class Site:
    alias: str
    users: CacheService
    session: CacheService  # SENSITIVE


@pytest.fixture(params=SHARED)
def site(request: pytest.FixtureRequest) -> Iterator[Site]:
    alias: str = request.param
    users, session = unique_namespace("users"), unique_namespace("session")
    with declared(
        {users: {"TTL": 1800, "CACHE": alias}, session: {"TTL": 86400, "SENSITIVE": True}},
        cache=alias,
    ):
        found = Site(alias, namespaces[users], namespaces[session])
        found.users.set("u-42", {"email": "ada@example.com"}, indexes={"email": "ada@example.com"})
        found.users.set("u-43", {"email": "bob@example.com"}, indexes={"email": "bob@example.com"})
        found.session.set("sess-1", {"user_id": 42, "token": "s3cr3t"})
        yield found
        found.users.clear()
        found.session.clear()


def ok(*args: str) -> str:
    result = cli(*args)
    assert result.status == 0, result.err
    assert "Traceback" not in result.err
    return result.out


def test_every_subcommand_from_a_second_process(site: Site) -> None:
    users = site.users.namespace
    listing = {r["namespace"]: r for r in cli("list", "--format", "json").json()["namespaces"]}
    assert listing[users]["entries"] == 2
    assert listing[site.session.namespace]["sensitive"] is True
    assert users in ok("list")
    assert cli("stats", users, "--format", "json").json()["entries"] == 2
    assert ok("keys", users).splitlines() == ["u-42", "u-43"]
    assert ok("keys", users, "--pattern", "*2", "--limit", "5").splitlines() == ["u-42"]
    got = cli("get", users, "u-42", "--format", "json").json()
    assert got["value"] == {"email": "ada@example.com"}
    assert 1700 <= got["ttl"] <= 1800  # the second process may start slowly on a busy machine
    assert ok("find", users, "email", "bob@example.com").splitlines() == ["u-43"]
    assert "Pruned 0 dead index members" in ok("prune", users)
    assert "Deleted 1 of 1 key" in ok("delete", users, "u-43")
    assert site.users.keys() == ["u-42"]
    assert "1 would be dropped" in ok("flush", users, "--dry-run")
    assert site.users.keys() == ["u-42"]


def test_sensitive_values_stay_hidden(site: Site) -> None:
    name = site.session.namespace
    assert "s3cr3t" not in ok("get", name, "sess-1")
    assert "s3cr3t" not in ok("get", name, "sess-1", "--format", "json")
    assert "s3cr3t" in ok("get", name, "sess-1", "--show-values")


def test_django_options_after_the_subcommand(site: Site) -> None:
    out = ok("keys", site.users.namespace, "--settings", "tests.command_settings", "-v", "2")
    assert out.splitlines() == ["u-42", "u-43"]
    assert cli("--verbosity", "0", "delete", site.users.namespace, "u-42").out == ""


def test_failures_exit_non_zero_without_a_traceback(site: Site) -> None:
    users = site.users.namespace
    failures = {
        ("stats", "nope"): "Unknown cache namespace 'nope'",
        ("get", users, "absent"): "has no entry 'absent'",
        ("keys", users, "--cache", "nowhere"): "is not an alias in settings.CACHES",
        ("flush",): "Name the namespaces to flush",
        ("find", users, "bad index!", "x"): "index name",
    }
    for args, message in failures.items():
        result = cli(*args)
        assert result.status == 1, args
        assert f"CommandError: {message}" in result.err or message in result.err, result.err
        assert "Traceback" not in result.err
    assert users in cli("stats", "nope").err  # the known namespaces are listed


def test_usage_mistakes_print_usage(site: Site) -> None:
    for args in [(), ("drop",), ("get", site.users.namespace), ("keys", "x", "--limit", "-3")]:
        result = cli(*args)
        assert result.status == 2, args
        assert "usage: " in result.err
        assert "Traceback" not in result.err


@pytest.mark.parametrize("hostile", ["*", "[", "\\", "{}", "", "x" * 10_000, "a\tb", "é\x7f"])
def test_hostile_arguments_fail_cleanly_or_match_literally(site: Site, hostile: str) -> None:
    users = site.users.namespace
    namespace_args = [("stats", hostile), ("flush", hostile, "--noinput")]
    for args in namespace_args if site.alias == "db" else []:  # found unknown before any store
        result = cli(*args)
        assert result.status == 1
        assert "Unknown cache namespace" in result.err
        assert len(result.err) < 2000
        assert "Traceback" not in result.err
    result = cli("get", users, hostile)
    assert result.status == 1
    assert "Traceback" not in result.err
    assert len(result.err) < 2000
    keys = cli("keys", users, "--pattern", hostile, "--format", "json")
    assert keys.status == 0, keys.err
    assert keys.json()["keys"] == (["u-42", "u-43"] if hostile == "*" else [])
    assert sorted(site.users.keys()) == ["u-42", "u-43"]
