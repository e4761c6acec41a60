"""``AGENTHUB_CACHE`` read once into typed, immutable objects.

The parsed settings are cached and dropped whenever Django's ``setting_changed`` fires for
``AGENTHUB_CACHE`` or ``CACHES``, so ``override_settings`` just works. Mistakes are reported
by the system checks (``checks.py``); reaching for bad settings at run time raises
``ImproperlyConfigured`` with the same message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

from agenthub_cache.exceptions import UnknownNamespace
from agenthub_cache.validation import (
    DEFAULT_ALIAS,
    DEFAULT_TTL,
    MAX_SLOTS,
    MAX_TTL,
    NAMESPACE_OPTIONS,
    SEED_NAMESPACES,
    SETTING,
    TOP_LEVEL_OPTIONS,
    is_valid_name,
    is_valid_slots,
    is_valid_ttl,
    settings_errors,
)


@dataclass(frozen=True)
class NamespaceSettings:
    """One declared namespace. ``ttl=None`` means entries never expire."""

    name: str
    ttl: int | None
    cache: str
    fail_silently: bool = False
    sensitive: bool = False
    #: Hash tags the namespace is spread over on a Redis Cluster (1: one slot).
    slots: int = 1
    #: Count hits, misses, sets, deletes, errors and latency in this process (``metrics.py``);
    #: ``"redis"``: and sum every process's counts in Redis (``metrics_redis.py``).
    metrics: bool | str = True


@dataclass(frozen=True)
class AppSettings:
    cache: str
    default_ttl: int | None
    namespaces: Mapping[str, NamespaceSettings]


def slots_of(namespace: str) -> int:
    """The ``SLOTS`` of a declared namespace; 1 for an ad hoc one (or unreadable settings)."""
    try:
        declared = get_settings().namespaces.get(namespace)
    except ImproperlyConfigured:
        return 1
    return 1 if declared is None else declared.slots


def raw_settings() -> Mapping[str, Any]:
    return getattr(settings, SETTING, None) or {}


@lru_cache(maxsize=1)
def get_settings() -> AppSettings:
    """The parsed settings; raises ``ImproperlyConfigured`` on the first mistake."""
    errors = settings_errors()
    if errors:
        first = errors[0]
        raise ImproperlyConfigured(f"{first.msg} ({first.id}). HINT: {first.hint}")
    raw = raw_settings()
    alias: str = raw.get("CACHE", DEFAULT_ALIAS)
    default_ttl: int | None = raw.get("DEFAULT_TTL", DEFAULT_TTL)
    declared: Mapping[str, Mapping[str, Any]] = raw.get("NAMESPACES", SEED_NAMESPACES)
    namespaces = {
        name: NamespaceSettings(
            name=name,
            ttl=options.get("TTL", default_ttl),
            cache=options.get("CACHE", alias),
            fail_silently=options.get("FAIL_SILENTLY", False),
            sensitive=options.get("SENSITIVE", False),
            slots=options.get("SLOTS", 1),
            metrics=options.get("METRICS", True),
        )
        for name, options in declared.items()
    }
    return AppSettings(alias, default_ttl, MappingProxyType(namespaces))


@receiver(setting_changed)
def _reset(*, setting: str, **kwargs: Any) -> None:
    if setting in (SETTING, "CACHES"):
        get_settings.cache_clear()


def require_namespace(name: str) -> NamespaceSettings:
    try:
        return get_settings().namespaces[name]
    except KeyError:
        known = ", ".join(sorted(get_settings().namespaces)) or "none"
        raise UnknownNamespace(
            f"Unknown cache namespace {name!r}; the configured namespaces are: {known}. "
            f"Declare it in settings.{SETTING}['NAMESPACES']."
        ) from None


__all__ = [
    "DEFAULT_ALIAS",
    "DEFAULT_TTL",
    "MAX_SLOTS",
    "MAX_TTL",
    "NAMESPACE_OPTIONS",
    "SEED_NAMESPACES",
    "SETTING",
    "TOP_LEVEL_OPTIONS",
    "AppSettings",
    "ImproperlyConfigured",
    "NamespaceSettings",
    "get_settings",
    "is_valid_name",
    "is_valid_slots",
    "is_valid_ttl",
    "require_namespace",
    "slots_of",
]
