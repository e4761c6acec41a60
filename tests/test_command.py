"""``cache_namespaces`` through ``call_command``, on LocMem, the SQLite DB cache and Redis.

Each test declares namespaces of its own (``override_settings(AGENTHUB_CACHE=...)``) on one
real store and checks the subcommand's table and its JSON shape. ``test_command_cli.py`` runs the
same command as a subprocess; ``test_command_flush.py`` covers flushing.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.cache import caches
from django.core.management import CommandError
from django.core.management.base import CommandParser

from agenthub_cache import FOREVER, CacheService, namespaces
from agenthub_cache.management.commands.cache_namespaces import Command
from agenthub_cache.providers.base import Capabilities
from tests.command_support import declared, run
from tests.conftest import unique_namespace

ALIASES = ["locmem", "db", "redis", "redis_django"]
LIST_ROW = {
    "namespace", "cache", "backend", "provider", "default_ttl", "entries", "sensitive",
    "fail_silently", "capabilities", "error",
}  # fmt: skip
STATS = {
    "namespace", "cache", "backend", "provider", "location", "default_ttl", "sensitive",
    "fail_silently", "entries", "indexes", "memory_bytes", "capabilities",
}  # fmt: skip
CAPABILITIES = set(Capabilities().as_dict())


@dataclass
class Spaces:
    alias: str
    main: CacheService  # TTL 300
    secret: CacheService  # SENSITIVE
    other: CacheService  # a neighbour that must never be touched


@pytest.fixture(params=ALIASES)
def spaces(request: pytest.FixtureRequest) -> Iterator[Spaces]:
    alias: str = request.param
    main, secret, other = (unique_namespace(stem) for stem in ("cmd", "sec", "nbr"))
    declared_ = {
        main: {"TTL": 300, "CACHE": alias},
        secret: {"TTL": 600, "CACHE": alias, "SENSITIVE": True},
        other: {"TTL": 300, "CACHE": alias},
    }
    with declared(declared_, cache=alias):
        found = Spaces(alias, namespaces[main], namespaces[secret], namespaces[other])
        yield found
        for service in (found.main, found.secret, found.other):
            service.clear()


def fails(*args: Any, **options: Any) -> str:
    with pytest.raises(CommandError) as raised:
        run(*args, **options)
    message = str(raised.value)
    assert len(message) < 2000, "a message must stay readable whatever the argument"
    return message


# -- list ------------------------------------------------------------------------------------


def test_list_table(spaces: Spaces) -> None:
    spaces.main.set("a", 1)
    spaces.main.set("b", 2)
    spaces.secret.set("s", "token")
    result = run("list")
    lines = result.out.splitlines()
    assert lines[0].split() == [
        "NAMESPACE", "CACHE", "BACKEND", "PROVIDER", "TTL", "ENTRIES", "INDEXES", "FLUSH",
    ]  # fmt: skip
    rows = {line.split()[0]: line.split() for line in lines[1:] if line.strip()}
    assert rows[spaces.main.namespace][1] == spaces.alias
    assert rows[spaces.main.namespace][4] == "5m"
    assert rows[spaces.main.namespace][5] == "2"
    assert rows[spaces.secret.namespace][5] == "1"
    assert rows[spaces.other.namespace][5] == "0"
    assert all(len(line) <= 100 for line in lines)


def test_list_json_shape(spaces: Spaces) -> None:
    spaces.main.set("a", 1)
    document = run("list", "--format", "json").json()
    assert set(document) == {"namespaces"}
    rows = {row["namespace"]: row for row in document["namespaces"]}
    assert set(rows) == {spaces.main.namespace, spaces.secret.namespace, spaces.other.namespace}
    for row in rows.values():
        assert set(row) == LIST_ROW
        assert set(row["capabilities"]) == CAPABILITIES
        assert row["cache"] == spaces.alias
        assert row["error"] is None
    main = rows[spaces.main.namespace]
    assert main["entries"] == 1
    assert main["default_ttl"] == 300
    assert main["backend"] == spaces.main.provider.describe()["backend"]
    assert main["provider"] == spaces.main.provider.describe()["provider"]
    assert rows[spaces.secret.namespace]["sensitive"] is True


def test_list_full_names_at_verbosity_2(spaces: Spaces) -> None:
    out = run("list", verbosity=2).out
    assert spaces.main.provider.describe()["backend"] in out


def test_list_with_no_namespaces() -> None:
    with declared({}):
        result = run("list")
        assert result.out == ""
        assert "No namespaces are configured" in result.err
        assert run("list", "--format", "json").json() == {"namespaces": []}


# -- stats -----------------------------------------------------------------------------------


def test_stats(spaces: Spaces) -> None:
    spaces.main.set("a", 1, indexes={"user": "1"})
    spaces.main.set("b", 2, indexes={"user": "2"})
    document = run("stats", spaces.main.namespace, format="json").json()
    assert set(document) >= STATS
    assert document["namespace"] == spaces.main.namespace
    assert document["cache"] == spaces.alias
    assert document["entries"] == 2
    assert document["indexes"] == 2
    assert document["default_ttl"] == 300
    assert document["sensitive"] is False
    assert set(document["capabilities"]) == CAPABILITIES
    assert document["index_names"] == ["user"]
    metrics = document["metrics"]  # this process's: the sets above, and the command's own calls
    assert (metrics["sets"], metrics["hits"], metrics["errors"]) == (2, 0, {})
    assert metrics["operations"]["set"]["count"] == 2
    table = run("stats", spaces.main.namespace).out
    assert re.search(r"^index names +user$", table, re.MULTILINE)
    assert re.search(r"^sets +2$", table, re.MULTILINE)
    assert "entries" in table
    assert "30m" not in table
    assert "5m (300 s)" in table


# -- keys ------------------------------------------------------------------------------------


def test_keys_table_and_json(spaces: Spaces) -> None:
    for key in ("user:2", "user:1", "order:1"):
        spaces.main.set(key, key)
    spaces.other.set("user:9", "neighbour")
    assert run("keys", spaces.main.namespace).out.splitlines() == ["order:1", "user:1", "user:2"]
    document = run("keys", spaces.main.namespace, "--pattern", "user:*", "--format", "json").json()
    assert document == {
        "namespace": spaces.main.namespace,
        "pattern": "user:*",
        "limit": 100,
        "keys": ["user:1", "user:2"],
        "truncated": False,
    }


def test_keys_limit(spaces: Spaces) -> None:
    spaces.main.set_many({f"k{i}": i for i in range(7)})
    result = run("keys", spaces.main.namespace, limit=3)
    assert len(result.out.splitlines()) == 3
    assert "--limit 0 shows all" in result.err
    document = run("keys", spaces.main.namespace, "--limit", "3", "--format", "json").json()
    assert len(document["keys"]) == 3
    assert document["truncated"] is True
    assert len(run("keys", spaces.main.namespace, "--limit", "0").out.splitlines()) == 7
    assert run("keys", spaces.main.namespace, limit=7, format="json").json()["truncated"] is False


def test_keys_none_match(spaces: Spaces) -> None:
    result = run("keys", spaces.main.namespace, pattern="nothing*")
    assert result.out == ""
    assert "No key of namespace" in result.err
    assert run("keys", spaces.main.namespace, pattern="nothing*", verbosity=0).err == ""


@pytest.mark.parametrize("limit", [-1, "3", 2.5, True])
def test_keys_bad_limit_through_call_command(spaces: Spaces, limit: Any) -> None:
    assert "--limit must be a whole number" in fails("keys", spaces.main.namespace, limit=limit)


def test_keys_bad_limit_on_the_command_line(spaces: Spaces) -> None:
    assert "not a whole number" in fails("keys", spaces.main.namespace, "--limit", "-1")
    assert "not a whole number" in fails("keys", spaces.main.namespace, "--limit", "many")


# -- get -------------------------------------------------------------------------------------


def test_get_json_value(spaces: Spaces) -> None:
    spaces.main.set("u-42", {"email": "ada@example.com", "roles": ["admin"]})
    result = run("get", spaces.main.namespace, "u-42")
    assert "value (json):" in result.out
    assert '"email": "ada@example.com"' in result.out
    assert "ttl" in result.out
    seconds = int(re.search(r"\((\d+) s\)", result.out).group(1))  # type: ignore[union-attr]
    assert 295 <= seconds <= 300  # a second may tick by (the DB cache stores whole seconds)
    document = run("get", spaces.main.namespace, "u-42", format="json").json()
    assert set(document) == {
        "namespace",
        "key",
        "ttl",
        "ttl_known",
        "type",
        "value_format",
        "value",
    }
    assert document["value"] == {"email": "ada@example.com", "roles": ["admin"]}
    assert document["value_format"] == "json"
    assert document["type"] == "dict"
    assert document["ttl_known"] is True
    assert 295 <= document["ttl"] <= 300


@pytest.mark.parametrize(
    "value",
    [datetime.date(2026, 1, 2), (1, 2), {1: "int key"}, b"\x00bytes", float("nan"), {"s": {1, 2}}],
)
def test_get_repr_when_json_would_change_the_value(spaces: Spaces, value: Any) -> None:
    spaces.main.set("v", value)
    document = run("get", spaces.main.namespace, "v", format="json").json()
    assert document["value_format"] == "repr"
    assert document["value"] == repr(value)
    assert f"value (repr):\n{value!r}" in run("get", spaces.main.namespace, "v").out


class Loud:
    """A value whose repr holds terminal control sequences."""

    def __repr__(self) -> str:
        return "Loud(\x1b[2J\x07)\nsecond line"


def test_get_repr_is_printable(spaces: Spaces) -> None:
    spaces.main.set("loud", Loud())
    out = run("get", spaces.main.namespace, "loud").out
    assert "\x1b" not in out
    assert "Loud(\\x1b[2J\\x07)\nsecond line" in out


def test_get_never_expires(spaces: Spaces) -> None:
    spaces.main.set("forever", "x", ttl=FOREVER)
    document = run("get", spaces.main.namespace, "forever", format="json").json()
    assert document["ttl"] is None
    assert document["ttl_known"] is True
    assert "never expires" in run("get", spaces.main.namespace, "forever").out


def test_get_stored_none_is_found(spaces: Spaces) -> None:
    spaces.main.set("nothing", None)
    assert run("get", spaces.main.namespace, "nothing", format="json").json()["value"] is None


def test_get_missing(spaces: Spaces) -> None:
    message = fails("get", spaces.main.namespace, "absent")
    assert f"Cache namespace {spaces.main.namespace!r} has no entry 'absent'" in message
    assert f"cache_namespaces keys {spaces.main.namespace}" in message


@pytest.mark.parametrize("alias", ["memcached", "files"])
def test_get_missing_hints_only_what_the_backend_can_do(alias: str, stores: dict[str, Any]) -> None:
    """memcached and the file cache cannot list keys: the hint names ``find``, never ``keys``."""
    if alias not in stores:
        pytest.skip("memcached is not installed (apt-get install memcached)")
    name = unique_namespace("miss")
    message = fails("get", name, "absent", cache=alias)
    assert f"Cache namespace {name!r} has no entry 'absent'" in message
    assert "cache_namespaces keys" not in message
    assert f"cannot list its keys; 'cache_namespaces find {name} INDEX VALUE'" in message


def test_get_sensitive_value_hidden_unless_asked(spaces: Spaces) -> None:
    spaces.secret.set("session-1", {"user_id": 42, "csrf": "s3cr3t"})
    for output in (
        run("get", spaces.secret.namespace, "session-1").out,
        run("get", spaces.secret.namespace, "session-1", format="json").out,
    ):
        assert "s3cr3t" not in output
    assert "--show-values" in run("get", spaces.secret.namespace, "session-1").out
    document = run("get", spaces.secret.namespace, "session-1", format="json").json()
    assert document["value_format"] == "hidden"
    assert document["value"] is None
    shown = run("get", spaces.secret.namespace, "session-1", "--show-values", "--format", "json")
    assert shown.json()["value"] == {"user_id": 42, "csrf": "s3cr3t"}
    assert "s3cr3t" in run("get", spaces.secret.namespace, "session-1", show_values=True).out


# -- delete, find, prune -----------------------------------------------------------------------


def test_delete(spaces: Spaces) -> None:
    spaces.main.set_many({"a": 1, "b": 2, "keep": 3})
    spaces.other.set("a", "neighbour")
    result = run("delete", spaces.main.namespace, "a", "b", "absent")
    assert f"Deleted 2 of 3 keys from namespace {spaces.main.namespace!r}." in result.out
    assert "not found: absent" in result.out
    assert spaces.main.keys() == ["keep"]
    assert spaces.other.get("a") == "neighbour"
    spaces.main.set("c", 1)
    document = run("delete", spaces.main.namespace, "c", "absent", format="json").json()
    assert document == {"namespace": spaces.main.namespace, "deleted": ["c"], "missing": ["absent"]}
    assert run("delete", spaces.main.namespace, "keep", verbosity=0).out == ""


def test_delete_checks_every_key_before_deleting_any(spaces: Spaces) -> None:
    spaces.main.set("a", 1)
    with pytest.raises(CommandError, match="must not be empty"):
        run("delete", spaces.main.namespace, "a", "")
    assert spaces.main.get("a") == 1


def test_delete_removes_index_filings(spaces: Spaces) -> None:
    spaces.main.set("u1", 1, indexes={"email": "a@b.c"})
    run("delete", spaces.main.namespace, "u1")
    assert spaces.main.find("email", "a@b.c") == []


def test_find(spaces: Spaces) -> None:
    spaces.main.set("u1", 1, indexes={"email": "a@b.c"})
    spaces.main.set("u2", 2, indexes={"email": "a@b.c"})
    spaces.main.set("u3", 3, indexes={"email": "z@b.c"})
    spaces.other.set("u9", 9, indexes={"email": "a@b.c"})
    assert run("find", spaces.main.namespace, "email", "a@b.c").out.splitlines() == ["u1", "u2"]
    assert run("find", spaces.main.namespace, "email", "a@b.c", format="json").json() == {
        "namespace": spaces.main.namespace,
        "index": "email",
        "value": "a@b.c",
        "keys": ["u1", "u2"],
    }
    nothing = run("find", spaces.main.namespace, "email", "nobody@b.c")
    assert nothing.out == ""
    assert "No live entry" in nothing.err


def test_prune(spaces: Spaces) -> None:
    spaces.main.set("u1", 1, indexes={"email": "a@b.c"})
    spaces.main.set("u2", 2, indexes={"email": "a@b.c"})
    # The value goes behind the app's back (evicted, say): its index member is now dead.
    plain = spaces.main.provider.backend
    assert plain.delete(spaces.main.make_key("u1"))
    document = run("prune", spaces.main.namespace, format="json").json()
    assert set(document) == {"namespace", "pruned", "seconds"}
    assert document["pruned"] >= 1
    assert spaces.main.find("email", "a@b.c") == ["u2"]
    assert "Pruned 0 dead index members" in run("prune", spaces.main.namespace).out


# -- ad hoc namespaces and mistakes -------------------------------------------------------------


def test_cache_option_reaches_an_ad_hoc_namespace(spaces: Spaces) -> None:
    ad_hoc = CacheService(unique_namespace("adhoc"), cache=spaces.alias)
    try:
        ad_hoc.set("k", {"v": 1}, indexes={"tag": "x"})
        name = ad_hoc.namespace
        assert "Unknown cache namespace" in fails("keys", name)
        assert run("keys", name, "--cache", spaces.alias).out.splitlines() == ["k"]
        assert run("get", name, "k", cache=spaces.alias, format="json").json()["value"] == {"v": 1}
        assert run("stats", name, cache=spaces.alias, format="json").json()["entries"] == 1
        assert run("find", name, "tag", "x", cache=spaces.alias).out.splitlines() == ["k"]
        assert run("prune", name, cache=spaces.alias, format="json").json()["pruned"] == 0
        run("delete", name, "k", cache=spaces.alias)
        assert ad_hoc.keys() == []
    finally:
        ad_hoc.clear()


def test_cache_option_keeps_a_declared_namespace_sensitive(spaces: Spaces) -> None:
    spaces.secret.set("t", "s3cr3t")
    out = run("get", spaces.secret.namespace, "t", cache=spaces.alias).out
    assert "s3cr3t" not in out


def test_unknown_namespace_lists_the_known_ones(spaces: Spaces) -> None:
    for args in (("stats", "nope"), ("keys", "nope"), ("get", "nope", "k"), ("prune", "nope")):
        message = fails(*args)
        assert "Unknown cache namespace 'nope'" in message
        for known in (spaces.main, spaces.secret, spaces.other):
            assert known.namespace in message
        assert "--cache ALIAS" in message


def test_unknown_namespace_suggests_a_close_one(spaces: Spaces) -> None:
    typo = spaces.main.namespace[:-1]
    assert f"Did you mean {spaces.main.namespace!r}?" in fails("stats", typo)


def test_unknown_cache_alias(spaces: Spaces) -> None:
    message = fails("stats", spaces.main.namespace, cache="nowhere")
    assert "'nowhere' is not an alias in settings.CACHES" in message
    assert spaces.alias in message


def test_bad_format_through_call_command(spaces: Spaces) -> None:
    assert "--format must be one of table, json" in fails("list", format="xml")
    assert "invalid choice: 'xml'" in fails("list", "--format", "xml")


def test_missing_and_unknown_subcommands() -> None:
    assert "SUBCOMMAND" in fails()
    assert "invalid choice: 'drop'" in fails("drop")
    assert "NAME" in fails("get")
    assert "VALUE" in fails("find", "x", "email")


def test_invalid_settings_are_a_command_error() -> None:
    from django.test.utils import override_settings

    with override_settings(AGENTHUB_CACHE={"NAMESPACES": {"bad name!": {}}}):
        message = fails("list")
    assert "settings.AGENTHUB_CACHE is invalid" in message
    assert "manage.py check" in message


# -- hostile arguments: fail cleanly or match literally -----------------------------------------

HOSTILE = ["*", "[", "\\", "{}", "[*]", "a\x1b[31mred", "tab\tnew\nline", "ümlaut-🙂", "?"]


def test_hostile_keys_match_literally(spaces: Spaces) -> None:
    for key in HOSTILE:
        spaces.main.set(key, f"value of {key}")
    spaces.main.set("plain", "p")
    spaces.other.set("*", "neighbour")
    for key in HOSTILE:
        document = run("get", spaces.main.namespace, key, format="json").json()
        assert document["value"] == f"value of {key}"
    # A pattern holding no glob character matches that key alone.
    for key in ("{}", "\\", "a\x1b[31mred", "ümlaut-🙂"):
        assert run("keys", spaces.main.namespace, pattern=key, format="json").json()["keys"] == [
            key
        ]
    assert run("keys", spaces.main.namespace, pattern="[*]", format="json").json()["keys"] == ["*"]
    assert run("keys", spaces.main.namespace, pattern="", format="json").json()["keys"] == []
    everything = run("keys", spaces.main.namespace, pattern="*", format="json").json()["keys"]
    assert sorted(everything) == sorted([*HOSTILE, "plain"])
    run("delete", spaces.main.namespace, "*", "[")
    assert sorted(spaces.main.keys()) == sorted([k for k in HOSTILE if k not in "*["] + ["plain"])
    assert spaces.other.get("*") == "neighbour"


def test_hostile_keys_never_reach_the_terminal_raw(spaces: Spaces) -> None:
    spaces.main.set("\x1b[2Jwipe", "x")
    spaces.main.set("bell\x07", "\x1b[31m")
    for output in (
        run("keys", spaces.main.namespace).out,
        run("keys", spaces.main.namespace, format="json").out,
        run("get", spaces.main.namespace, "bell\x07").out,
        run("get", spaces.main.namespace, "bell\x07", format="json").out,
        run("delete", spaces.main.namespace, "\x1b[2Jwipe", "absent\x1b").out,
    ):
        assert "\x1b" not in output
        assert "\x07" not in output
    assert "'\\x1b[2Jwipe'" not in run("keys", spaces.main.namespace).out  # it was deleted


def test_hostile_index_arguments(spaces: Spaces) -> None:
    spaces.main.set("u1", 1, indexes={"email": "*"})
    spaces.main.set("u2", 2, indexes={"email": "a@b.c"})
    assert run("find", spaces.main.namespace, "email", "*").out.splitlines() == ["u1"]
    assert run("find", spaces.main.namespace, "email", "[").out == ""
    assert run("find", spaces.main.namespace, "email", "").out == ""
    for index in ("*", "[", "\\", "{}", "", "x" * 10_000, "e\x00mail"):
        message = fails("find", spaces.main.namespace, index, "a@b.c")
        assert "index name" in message
        assert spaces.main.namespace in message


@pytest.mark.parametrize("name", ["*", "[", "\\", "{}", "", "n" * 10_000, "a\x00b", "\x1b[31m"])
def test_hostile_namespace_names(spaces: Spaces, name: str) -> None:
    before = spaces.main.set("k", 1)
    assert before
    for args in (("stats", name), ("keys", name), ("get", name, "k"), ("flush", name)):
        message = fails(*args, interactive=False) if args[0] == "flush" else fails(*args)
        assert "Unknown cache namespace" in message
        assert "\x1b" not in message
        assert "\x00" not in message
    message = fails("keys", name, cache=spaces.alias)
    assert "Invalid cache namespace name" in message
    assert spaces.main.get("k") == 1


@pytest.mark.parametrize("key", ["", "k" * 10_000, "\udcff"])
def test_keys_the_store_cannot_take_fail_cleanly(spaces: Spaces, key: str) -> None:
    message = fails("get", spaces.main.namespace, key)
    assert spaces.main.namespace in message
    try:  # a store with no key length limit simply has no such entry
        result = run("delete", spaces.main.namespace, key)
    except CommandError as exc:
        message = str(exc)
    else:
        message = spaces.main.namespace
        assert "Deleted 0 of 1 key " in result.out
    assert spaces.main.namespace in message
    assert len(message) < 2000


def test_long_patterns_match_nothing(spaces: Spaces) -> None:
    spaces.main.set("k", 1)
    assert run("keys", spaces.main.namespace, pattern="*" * 10_000, format="json").json()[
        "keys"
    ] == ["k"]
    assert run("keys", spaces.main.namespace, pattern="k" * 10_000).out == ""


# -- Django's conventions ----------------------------------------------------------------------


def subparsers(parser: CommandParser) -> dict[str, CommandParser]:
    (action,) = [a for a in parser._actions if a.dest == "subcommand"]
    return dict(action.choices)  # type: ignore[arg-type]


def test_every_argument_has_help() -> None:
    command = Command()
    parser = command.create_parser("manage.py", "cache_namespaces")
    assert command.help
    subs = subparsers(parser)
    assert set(subs) == {"list", "stats", "keys", "get", "delete", "find", "prune", "flush"}
    for name, sub in subs.items():
        assert sub.description, name
        for action in sub._actions:
            assert action.help, f"{name} {action.option_strings or action.dest} has no help"


def test_django_options_after_the_subcommand(spaces: Spaces) -> None:
    spaces.main.set("k", 1)
    assert run("delete", spaces.main.namespace, "k", "-v", "0").out == ""
    assert run("-v", "0", "delete", spaces.main.namespace, "k").out == ""


def test_call_command_accepts_every_option(spaces: Spaces) -> None:
    """Every subcommand and option, by its dest name as Django documents for call_command."""
    name = spaces.main.namespace
    spaces.main.set("k", {"a": 1}, indexes={"tag": "t"})
    spaces.secret.set("s", "hidden")
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
        (("list",), {"format": "json", "verbosity": 0}),
        (("stats", name), {"cache": spaces.alias, "format": "json"}),
        (("keys", name), {"pattern": "k*", "limit": 5, "cache": spaces.alias, "format": "json"}),
        (("get", spaces.secret.namespace, "s"), {"show_values": True, "format": "json"}),
        (("find", name, "tag", "t"), {"cache": spaces.alias, "format": "json"}),
        (("prune", name), {"cache": spaces.alias, "format": "json"}),
        (("flush", name), {"dry_run": True, "format": "json"}),
        (("delete", name, "k"), {"cache": spaces.alias, "format": "json"}),
        (("flush", name), {"interactive": False, "cache": spaces.alias, "format": "json"}),
        (("flush",), {"all": True, "interactive": False, "verbosity": 0}),
    ]
    for args, options in calls:
        result = run(*args, **options)
        if options.get("format") == "json":
            json.loads(result.out)
    assert spaces.secret.keys() == []  # the last call flushed every declared namespace


def test_unknown_call_command_option() -> None:
    with pytest.raises(TypeError, match="Unknown option"):
        run("list", colour=True)


def test_plain_keys_of_the_alias_are_never_listed(spaces: Spaces) -> None:
    plain = caches[spaces.alias]
    plain_key = f"plain-{spaces.main.namespace}"
    plain.set(plain_key, 1)
    try:
        spaces.main.set("k", 1)
        assert run("keys", spaces.main.namespace).out.splitlines() == ["k"]
    finally:
        plain.delete(plain_key)
