"""Only serialization errors become "cannot be serialized"; a provider's bug surfaces as itself."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from django.conf import settings
from django.core.cache.backends.locmem import LocMemCache
from django.test.utils import override_settings

from agenthub_cache import CacheService, register_provider
from agenthub_cache.providers.locmem import LocMemProvider


class BuggyCache(LocMemCache):
    """A LocMemCache whose provider has bugs."""


@register_provider(f"{__name__}.BuggyCache")
class BuggyProvider(LocMemProvider):
    def set(
        self, key: str, value: Any, timeout: float | None, indexes: Mapping[str, str] | None = None
    ) -> bool:
        raise TypeError("provider bug in set")

    def set_many(self, mapping: Mapping[str, Any], timeout: float | None) -> list[str]:
        raise AttributeError("provider bug in set_many")

    def get_or_set(self, key: str, default: Any, timeout: float | None, wait: float) -> Any:
        default()
        raise AttributeError("provider bug in get_or_set")


@pytest.fixture
def buggy() -> Iterator[CacheService]:
    caches_ = {**settings.CACHES, "buggy": {"BACKEND": f"{__name__}.BuggyCache", "LOCATION": "b"}}
    with override_settings(CACHES=caches_):
        yield CacheService("t-buggy", cache="buggy")


def test_a_provider_bug_surfaces_as_itself(buggy: CacheService) -> None:
    with pytest.raises(TypeError, match="provider bug in set"):
        buggy.set("k", 1)
    with pytest.raises(AttributeError, match="provider bug in set_many"):
        buggy.set_many({"k": 1})
    with pytest.raises(AttributeError, match="provider bug in get_or_set"):
        buggy.get_or_set("k", lambda: 1)


async def test_a_provider_bug_surfaces_as_itself_async(buggy: CacheService) -> None:
    with pytest.raises(TypeError, match="provider bug in set"):
        await buggy.aset("k", 1)


def test_a_value_that_cannot_be_serialized_is_a_value_error() -> None:
    service = CacheService("t-unpicklable", cache="locmem")
    with pytest.raises(ValueError, match=r"t-unpicklable.*set_many.*cannot be serialized"):
        service.set_many({"a": 1, "b": threading.Lock()})
    with pytest.raises(ValueError, match=r"t-unpicklable.*get_or_set.*cannot be serialized"):
        service.get_or_set("c", threading.Lock)
