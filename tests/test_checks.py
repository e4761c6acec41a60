"""System checks: each settings mistake by its id, each hazard by its warning."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test.utils import override_settings

from agenthub_cache import checks


def ids(setting: Any) -> list[str]:
    with override_settings(AGENTHUB_CACHE=setting):
        return [message.id for message in checks.check_settings() if message.id]


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        (["not", "a", "dict"], [checks.E001]),
        ({"CACHES": "default"}, [checks.E002]),
        ({"CACHE": "nope"}, [checks.E003]),
        ({"NAMESPACES": {"ok": {"CACHE": "nope"}}}, [checks.E003]),
        ({"NAMESPACES": {"bad name": {}}}, [checks.E004]),
        ({"NAMESPACES": {"-dash-first": {}}}, [checks.E004]),
        ({"NAMESPACES": {"x" * 65: {}}}, [checks.E004]),
        ({"DEFAULT_TTL": -5}, [checks.E005]),
        ({"DEFAULT_TTL": "900"}, [checks.E005]),
        ({"NAMESPACES": {"ok": {"TTL": 0}}}, [checks.E005]),
        ({"NAMESPACES": {"ok": {"TTL": True}}}, [checks.E005]),
        ({"NAMESPACES": {"ok": {"TTL": 10 * 365 * 86400 + 1}}}, [checks.E005]),
        ({"NAMESPACES": {"ok": {"TTLL": 5}}}, [checks.E006]),
        ({"NAMESPACES": ["signup"]}, [checks.E007]),
        ({"NAMESPACES": {"ok": 300}}, [checks.E007]),
        ({"NAMESPACES": {"ok": {"FAIL_SILENTLY": "yes"}}}, [checks.E008]),
        ({"NAMESPACES": {"ok": {"SENSITIVE": 1}}}, [checks.E008]),
    ],
)
def test_each_mistake_has_its_id(setting: Any, expected: list[str]) -> None:
    assert ids(setting) == expected


def test_unknown_option_gets_did_you_mean() -> None:
    with override_settings(AGENTHUB_CACHE={"NAMESPACES": {"ok": {"TTLL": 5}}, "DEFAULT_TLL": 1}):
        messages = checks.check_settings()
    hints = {m.id: m.hint for m in messages}
    assert "Did you mean 'TTL'?" in hints[checks.E006]
    assert "Did you mean 'DEFAULT_TTL'?" in hints[checks.E002]
    assert all(m.hint for m in messages)


def test_valid_settings_pass_and_ids_are_unique() -> None:
    assert len(set(checks.IDS)) == len(checks.IDS)
    # every id constant checks.py defines is in its ``__all__`` (W005 was not)
    source = Path(checks.__file__).read_text()
    defined = set(re.findall(r"^([EW]\d{3}) = ", source, flags=re.MULTILINE))
    assert {"E013", "W005"} <= defined
    assert defined - set(checks.__all__) == set()
    good = {
        "CACHE": "locmem",
        "DEFAULT_TTL": None,
        "NAMESPACES": {
            "a.b-c_1": {"TTL": 5, "CACHE": "db", "FAIL_SILENTLY": True, "SENSITIVE": True}
        },
    }
    assert ids(good) == []


def test_hazards_warn_once_per_alias() -> None:
    setting = {
        "NAMESPACES": {"a": {"CACHE": "dummy"}, "b": {"CACHE": "locmem"}, "c": {"CACHE": "locmem"}}
    }
    assert sorted(ids(setting)) == [checks.W001, checks.W002]


def test_manage_py_check_fails_with_the_ids() -> None:
    bad = {"NAMESPACES": {"bad name": {"TTL": -1}}}
    with override_settings(AGENTHUB_CACHE=bad), pytest.raises(SystemCheckError) as info:
        call_command("check")
    assert checks.E004 in str(info.value)
    assert checks.E005 in str(info.value)


@pytest.mark.parametrize(
    ("backend", "options", "warned"),
    [
        ("django.core.cache.backends.db.DatabaseCache", None, True),
        ("django.core.cache.backends.filebased.FileBasedCache", {}, True),
        ("django.core.cache.backends.locmem.LocMemCache", {"MAX_ENTRIES": 300}, True),
        ("django.core.cache.backends.db.DatabaseCache", {"MAX_ENTRIES": 100}, True),
        ("django.core.cache.backends.db.DatabaseCache", {"MAX_ENTRIES": 100_000}, False),
        ("django.core.cache.backends.locmem.LocMemCache", {"MAX_ENTRIES": 301}, False),
        ("django_redis.cache.RedisCache", None, False),
    ],
)
def test_default_max_entries_warns_where_culling_drops_index_records(
    backend: str, options: dict[str, Any] | None, warned: bool, tmp_path: Path
) -> None:
    """W005: a few hundred indexed entries make the database, file or LocMem cache cull values
    and index records at random (400 indexed entries left count() at 6)."""
    alias: dict[str, Any] = {"BACKEND": backend, "LOCATION": "agenthub_cache_w005"}
    if backend.endswith("FileBasedCache"):  # it creates its directory: not in the cwd
        alias["LOCATION"] = str(tmp_path / "agenthub_cache_w005")
    if backend.startswith("django_redis"):
        alias["LOCATION"] = "redis://127.0.0.1:1/0"  # never connected to: checks do no I/O
    if options is not None:
        alias["OPTIONS"] = options
    setting = {"NAMESPACES": {"a": {"CACHE": "small"}, "b": {"CACHE": "small"}}}
    with override_settings(CACHES={**settings.CACHES, "small": alias}, AGENTHUB_CACHE=setting):
        messages = [m for m in checks.check_hazards() if m.id == checks.W005]
        out = io.StringIO()
        call_command("check", stdout=out, stderr=out)  # bound: manage.py check shows it
        assert (checks.W005 in out.getvalue()) is warned
    if not warned:
        assert messages == []
        return
    (message,) = messages  # one per alias, naming its namespaces
    assert "'a', 'b'" in message.msg
    assert "'small'" in message.msg
    assert "MAX_ENTRIES = " in message.msg
    assert "settings.CACHES['small']['OPTIONS'] = {'MAX_ENTRIES': 100_000}" in message.hint
