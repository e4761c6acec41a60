"""System checks: each settings mistake by its id, each hazard by its warning."""

from __future__ import annotations

from typing import Any

import pytest
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
