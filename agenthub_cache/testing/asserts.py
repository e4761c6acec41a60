"""``assert_indexed`` / ``assert_not_indexed``: secondary-index assertions for tests."""

from __future__ import annotations

from typing import Any

from agenthub_cache.factory import namespaces
from agenthub_cache.policy import brief
from agenthub_cache.service import CacheService

_ANY: Any = object()


def _service(namespace: str | CacheService) -> CacheService:
    return namespace if isinstance(namespace, CacheService) else namespaces[namespace]


def _filed(service: CacheService, index: str, value: str) -> str:
    found = sorted(service.find(index, value))
    shown = ", ".join(map(repr, found[:10])) + (", ..." if len(found) > 10 else "")
    return f"{len(found)} key(s) filed there: [{shown}]" if found else "nothing is filed there"


def assert_indexed(
    namespace: str | CacheService, key: str, *, index: str, value: str, stored: Any = _ANY
) -> None:
    """``key`` of ``namespace`` is found under ``index`` = ``value`` (and holds ``stored``).

    ``namespace`` is a configured name or a ``CacheService``; ``value`` is the index value.
    """
    service = _service(namespace)
    where = f"Cache namespace {service.namespace!r}: key {brief(key)}"
    under = f"index {index!r} = {brief(value)}"
    if key not in service.find(index, value):
        present = "exists" if service.has_key(key) else "does not exist (missing or expired)"
        raise AssertionError(
            f"{where} is not filed under {under}; the key {present}, and "
            f"{_filed(service, index, value)}."
        )
    if stored is not _ANY:
        actual = service.get_by_index(index, value).get(key, _ANY)
        if actual != stored:
            holds = "nothing (it expired or went)" if actual is _ANY else brief(actual)
            raise AssertionError(
                f"{where} is filed under {under} but holds {holds}, not {brief(stored)}."
            )


def assert_not_indexed(namespace: str | CacheService, key: str, *, index: str, value: str) -> None:
    """``key`` of ``namespace`` is not found under ``index`` = ``value``."""
    service = _service(namespace)
    if key in service.find(index, value):
        raise AssertionError(
            f"Cache namespace {service.namespace!r}: key {brief(key)} is filed under index "
            f"{index!r} = {brief(value)}, and should not be ({_filed(service, index, value)})."
        )
