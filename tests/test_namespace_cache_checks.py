"""The system checks of ``NamespaceCache`` aliases (E009-E012) and of ``METRICS`` (E013): each
mistake's id, its message and hint, and that they come in one run with the other errors."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test.utils import override_settings

from agenthub_cache import checks, checks_namespace_cache

BACKEND = "agenthub_cache.backends.NamespaceCache"


def ids(caches_: dict[str, Any], agenthub: dict[str, Any]) -> list[str]:
    with override_settings(CACHES=caches_, AGENTHUB_CACHE=agenthub):
        return [message.id for message in checks.check_settings() if message.id]


@pytest.mark.parametrize(
    ("alias", "agenthub", "expected"),
    [
        (
            {"LOCATION": "ns"},
            {"NAMESPACES": {"ns": {"CACHE": "adapted"}}},
            [checks_namespace_cache.E009],
        ),
        (
            {"LOCATION": "ns"},
            {"CACHE": "adapted", "NAMESPACES": {"ns": {}}},
            [checks_namespace_cache.E009],
        ),
        (  # once for the default CACHE, however many namespaces inherit it
            {"LOCATION": "ns"},
            {"CACHE": "adapted", "NAMESPACES": {"ns": {}, "b": {}, "c": {"CACHE": "db"}}},
            [checks_namespace_cache.E009],
        ),
        ({}, {"NAMESPACES": {"ns": {}}}, [checks_namespace_cache.E010]),
        ({"LOCATION": "bad name"}, {"NAMESPACES": {"ns": {}}}, [checks_namespace_cache.E010]),
        ({"LOCATION": "nss"}, {"NAMESPACES": {"ns": {}}}, [checks_namespace_cache.E011]),
        (
            {"LOCATION": "ns", "TIMEOUT": 60},
            {"NAMESPACES": {"ns": {}}},
            [checks_namespace_cache.E012],
        ),
        (
            {"LOCATION": "ns", "OPTIONS": {"MAX_ENTRIES": 5}, "TIMEOUT": 1},
            {"NAMESPACES": {"ns": {}}},
            [checks_namespace_cache.E012, checks_namespace_cache.E012],
        ),
        ({"LOCATION": "ns", "KEY_PREFIX": "p", "VERSION": 2}, {"NAMESPACES": {"ns": {}}}, []),
    ],
)
def test_each_adapter_mistake_has_its_id(
    stores: dict[str, Any], alias: dict[str, Any], agenthub: dict[str, Any], expected: list[str]
) -> None:
    caches_ = {**stores, "adapted": {"BACKEND": BACKEND, **alias}}
    found = [
        i for i in ids(caches_, {"CACHE": "db", **agenthub}) if i.startswith("agenthub_cache.E")
    ]
    assert found == expected


def test_adapter_and_metrics_mistakes_are_reported_beside_other_setting_errors(
    stores: dict[str, Any],
) -> None:
    """One run of the checks names every mistake: E009-E013 no longer wait for the rest of
    AGENTHUB_CACHE to be fixed first (a second round of 'manage.py check')."""
    caches_ = {
        **stores,
        "adapted": {"BACKEND": BACKEND, "LOCATION": "ns", "TIMEOUT": 5},
        "unknown": {"BACKEND": BACKEND, "LOCATION": "nss"},
        "nameless": {"BACKEND": BACKEND},
    }
    agenthub = {
        "CACHE": "db",
        "NAMESPACES": {
            "ns": {"TTL": -1},  # E005
            "looped": {"CACHE": "adapted", "SENSITIVE": "yes"},  # E009, E008
            "counted": {"METRICS": "redis"},  # E013: on the database cache
            "typo": {"TLL": 5},  # E006
        },
    }
    found = sorted(i for i in ids(caches_, agenthub) if i.startswith("agenthub_cache.E"))
    assert found == [
        "agenthub_cache.E005",
        "agenthub_cache.E006",
        "agenthub_cache.E008",
        checks_namespace_cache.E009,
        checks_namespace_cache.E010,
        checks_namespace_cache.E011,
        checks_namespace_cache.E012,
        checks.E013,
    ]


@pytest.mark.parametrize(
    ("agenthub", "expected"),
    [
        # NAMESPACES unreadable: LOCATION cannot be matched (no E011), the rest still shows
        ({"CACHE": "db", "NAMESPACES": ["ns"]}, ["E007", "E010", "E012"]),
        ("not a dict", ["E001", "E010", "E012"]),
        # the default CACHE is no alias: no loop to report through it
        ({"CACHE": "nope", "NAMESPACES": {"ns": {"METRICS": "redis"}}}, ["E003", "E010", "E012"]),
    ],
)
def test_unreadable_parts_leave_out_only_what_needs_them(
    stores: dict[str, Any], agenthub: Any, expected: list[str]
) -> None:
    caches_ = {
        **stores,
        "adapted": {"BACKEND": BACKEND, "LOCATION": "ns", "OPTIONS": {}},
        "nameless": {"BACKEND": BACKEND},
    }
    found = sorted(i for i in ids(caches_, agenthub) if i.startswith("agenthub_cache.E"))
    assert found == [f"agenthub_cache.{i}" for i in expected]


def test_adapter_messages_name_the_alias_and_the_fix(stores: dict[str, Any]) -> None:
    caches_ = {
        **stores,
        "unknown": {"BACKEND": BACKEND, "LOCATION": "sesion"},
        "timed": {"BACKEND": BACKEND, "LOCATION": "session", "TIMEOUT": 5},
    }
    with override_settings(CACHES=caches_, AGENTHUB_CACHE={"CACHE": "db"}):
        messages = {m.id: m for m in checks.check_settings()}
    unknown, timed = messages[checks_namespace_cache.E011], messages[checks_namespace_cache.E012]
    assert "settings.CACHES['unknown']" in unknown.msg
    assert "Did you mean 'session'?" in (unknown.hint or "")
    assert "settings.CACHES['timed']" in timed.msg
    assert "Remove TIMEOUT." in (timed.hint or "")
    assert "AGENTHUB_CACHE['NAMESPACES']['session']['TTL']" in (timed.hint or "")


def test_manage_py_check_reports_adapter_mistakes(stores: dict[str, Any]) -> None:
    caches_ = {**stores, "adapted": {"BACKEND": BACKEND, "LOCATION": "nope"}}
    with (
        override_settings(CACHES=caches_, AGENTHUB_CACHE={"CACHE": "db"}),
        pytest.raises(SystemCheckError, match=r"agenthub_cache\.E011"),
    ):
        call_command("check")


def test_loop_message_names_the_setting_to_change(stores: dict[str, Any]) -> None:
    caches_ = {**stores, "adapted": {"BACKEND": BACKEND, "LOCATION": "a"}}
    setting = {"CACHE": "db", "NAMESPACES": {"a": {}, "b": {"CACHE": "adapted"}}}
    with override_settings(CACHES=caches_, AGENTHUB_CACHE=setting):
        [loop] = [m for m in checks.check_settings() if m.id == checks_namespace_cache.E009]
    assert loop.msg.startswith("settings.AGENTHUB_CACHE['NAMESPACES']['b']['CACHE'] is 'adapted'")
    assert "Point settings.AGENTHUB_CACHE['NAMESPACES']['b']['CACHE'] at" in (loop.hint or "")
