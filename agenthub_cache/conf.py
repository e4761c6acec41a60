"""``AGENTHUB_CACHE`` read once into typed, immutable objects.

The parsed settings are cached and dropped whenever Django's ``setting_changed`` fires for
``AGENTHUB_CACHE`` or ``CACHES``, so ``override_settings`` just works. Mistakes are reported
by the system checks (``checks.py``); reaching for bad settings at run time raises
``ImproperlyConfigured`` with the same message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

SETTING = "AGENTHUB_CACHE"
TOP_LEVEL_OPTIONS = ("CACHE", "DEFAULT_TTL", "NAMESPACES")
NAMESPACE_OPTIONS = ("TTL", "CACHE", "FAIL_SILENTLY", "SENSITIVE", "SLOTS")
#: Most hash tags ``SLOTS`` may spread one namespace over (on a Redis Cluster).
MAX_SLOTS = 1024
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")

DEFAULT_ALIAS = "default"
DEFAULT_TTL = 900
#: The seed's namespaces and TTLs, used when the settings declare no ``NAMESPACES``.
SEED_NAMESPACES: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {
        "confirmation": {"TTL": 300},
        "signup": {"TTL": 1800},
        "session": {"TTL": 86400, "SENSITIVE": True},
        "rate_limit": {"TTL": 3600},
        "temp": {"TTL": 60},
    }
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


@dataclass(frozen=True)
class AppSettings:
    cache: str
    default_ttl: int | None
    namespaces: Mapping[str, NamespaceSettings]


def is_valid_name(name: object) -> bool:
    """Namespace and index names: 1-64 of ``[A-Za-z0-9_.-]``, starting alphanumeric."""
    return isinstance(name, str) and NAME_RE.match(name) is not None


def is_valid_ttl(ttl: object) -> bool:
    """A settings TTL: a positive whole number of seconds, or None for "never expire"."""
    return ttl is None or (isinstance(ttl, int) and not isinstance(ttl, bool) and ttl > 0)


def is_valid_slots(slots: object) -> bool:
    """``SLOTS``: a whole number from 1 to ``MAX_SLOTS``."""
    return isinstance(slots, int) and not isinstance(slots, bool) and 1 <= slots <= MAX_SLOTS


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
    from agenthub_cache.checks import settings_errors

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
        )
        for name, options in declared.items()
    }
    return AppSettings(alias, default_ttl, MappingProxyType(namespaces))


@receiver(setting_changed)
def _reset(*, setting: str, **kwargs: Any) -> None:
    if setting in (SETTING, "CACHES"):
        get_settings.cache_clear()
        from agenthub_cache.factory import namespaces

        namespaces.reset()


def require_namespace(name: str) -> NamespaceSettings:
    from agenthub_cache.exceptions import UnknownNamespace

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
    "SEED_NAMESPACES",
    "AppSettings",
    "ImproperlyConfigured",
    "NamespaceSettings",
    "get_settings",
    "require_namespace",
]
