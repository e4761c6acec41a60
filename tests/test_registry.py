"""Registry: MRO walk, the decorator, lazy imports."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.db import DatabaseCache
from django.core.cache.backends.locmem import LocMemCache

from agenthub_cache import register_provider, registry
from agenthub_cache.providers.db import DatabaseProvider
from agenthub_cache.providers.generic import GenericProvider
from agenthub_cache.providers.locmem import LocMemProvider
from agenthub_cache.registry import provider_class_for


class MyLocMem(LocMemCache):
    pass


class ThirdPartyCache(BaseCache):
    def __init__(self, location: str, params: dict[str, Any]) -> None:
        super().__init__(params)


def test_subclass_finds_its_parents_provider() -> None:
    assert provider_class_for(LocMemCache) is LocMemProvider
    assert provider_class_for(MyLocMem) is LocMemProvider
    assert provider_class_for(DatabaseCache) is DatabaseProvider


def test_unknown_backend_falls_back_to_generic() -> None:
    assert provider_class_for(ThirdPartyCache) is GenericProvider


def test_decorator_registers_third_party_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_registry", dict(registry._registry))  # undone after the test

    @register_provider(f"{__name__}.ThirdPartyCache")
    class ThirdPartyProvider(GenericProvider):
        pass

    assert provider_class_for(ThirdPartyCache) is ThirdPartyProvider


def test_builtins_are_imported_lazily() -> None:
    import subprocess

    code = (
        "import sys, agenthub_cache; "
        "print(any(m.startswith('agenthub_cache.providers.') for m in sys.modules), "
        "'pymemcache' in sys.modules, 'redis' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "False"]
