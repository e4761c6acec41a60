"""What ``AGENTHUB_CACHE`` may hold, and every mistake in it as a system check error.

The lowest layer of the app: names, defaults and the rules settings must follow. ``conf``
parses the settings only once these rules pass; ``checks`` reports the same errors (with their
ids and hints) to ``manage.py check``, plus the hazards that need the providers.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error

SETTING = "AGENTHUB_CACHE"
TOP_LEVEL_OPTIONS = ("CACHE", "DEFAULT_TTL", "NAMESPACES")
NAMESPACE_OPTIONS = ("TTL", "CACHE", "FAIL_SILENTLY", "SENSITIVE", "METRICS", "SLOTS")
#: Most hash tags ``SLOTS`` may spread one namespace over (on a Redis Cluster).
MAX_SLOTS = 1024
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")

DEFAULT_ALIAS = "default"
DEFAULT_TTL = 900
#: The longest TTL, in seconds, that every store can hold (10 years; ``FOREVER`` for longer).
#: Larger values made Redis, the database cache and memcached fail with their own errors.
MAX_TTL = 10 * 365 * 86400
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


E001 = "agenthub_cache.E001"  # AGENTHUB_CACHE is not a dict
E002 = "agenthub_cache.E002"  # unknown top-level option
E003 = "agenthub_cache.E003"  # CACHE names an alias missing from CACHES
E004 = "agenthub_cache.E004"  # bad namespace name
E005 = "agenthub_cache.E005"  # bad TTL / DEFAULT_TTL
E006 = "agenthub_cache.E006"  # unknown namespace option
E007 = "agenthub_cache.E007"  # NAMESPACES, or one namespace's options, not a dict
E008 = "agenthub_cache.E008"  # FAIL_SILENTLY / SENSITIVE not a bool, METRICS not a bool or "redis"
#: E009-E012 are checks_namespace_cache.py's (NamespaceCache aliases), E013 (METRICS "redis" on
#: a non-Redis cache) checks.py's, E015-E016 checks_cluster.py's (RedisClusterCache aliases).
E014 = "agenthub_cache.E014"  # SLOTS not a whole number from 1 to MAX_SLOTS
ERROR_IDS = (E001, E002, E003, E004, E005, E006, E007, E008, E014)

_WHERE = f"settings.{SETTING}"


def is_valid_name(name: object) -> bool:
    """Namespace and index names: 1-64 of ``[A-Za-z0-9_.-]``, starting alphanumeric."""
    return isinstance(name, str) and NAME_RE.match(name) is not None


def is_valid_ttl(ttl: object) -> bool:
    """A settings TTL: a whole number of seconds from 1 to ``MAX_TTL``, or None (never expire)."""
    return ttl is None or (
        isinstance(ttl, int) and not isinstance(ttl, bool) and 0 < ttl <= MAX_TTL
    )


def is_valid_slots(slots: object) -> bool:
    """``SLOTS``: a whole number from 1 to ``MAX_SLOTS``."""
    return isinstance(slots, int) and not isinstance(slots, bool) and 1 <= slots <= MAX_SLOTS


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(word).upper(), list(choices), n=1)
    return f"Did you mean {close[0]!r}? " if close else ""


def _check_alias(alias: object, where: str) -> list[CheckMessage]:
    if isinstance(alias, str) and alias in settings.CACHES:
        return []
    known = ", ".join(sorted(settings.CACHES)) or "none"
    return [
        Error(
            f"{where} names the cache alias {alias!r}, which is not in settings.CACHES.",
            hint=f"Use one of the aliases in settings.CACHES ({known}) or add {alias!r} there.",
            id=E003,
        )
    ]


def _check_ttl(ttl: object, where: str) -> list[CheckMessage]:
    if is_valid_ttl(ttl):
        return []
    return [
        Error(
            f"{where} is {ttl!r}; a TTL must be a whole number of seconds from 1 to "
            f"{MAX_TTL} (10 years), or None.",
            hint="Use e.g. 300 for five minutes, or None for entries that never expire.",
            id=E005,
        )
    ]


def _check_options(
    given: Mapping[Any, Any], known: tuple[str, ...], where: str, id: str
) -> list[CheckMessage]:
    return [
        Error(
            f"{where} has an unknown option {option!r}.",
            hint=f"{_did_you_mean(option, known)}Known options: {', '.join(known)}.",
            id=id,
        )
        for option in given
        if option not in known
    ]


def _check_namespace(name: object, options: object, alias: object) -> list[CheckMessage]:
    where = f"{_WHERE}['NAMESPACES'][{name!r}]"
    errors: list[CheckMessage] = []
    if not is_valid_name(name):
        errors.append(
            Error(
                f"{where}: {name!r} is not a valid namespace name.",
                hint="Use 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit.",
                id=E004,
            )
        )
    if not isinstance(options, Mapping):
        errors.append(
            Error(
                f"{where} must be a dict of options, not {type(options).__name__}.",
                hint='For example {"TTL": 300}.',
                id=E007,
            )
        )
        return errors
    errors += _check_options(options, NAMESPACE_OPTIONS, where, E006)
    if "TTL" in options:
        errors += _check_ttl(options["TTL"], f"{where}['TTL']")
    if "CACHE" in options:
        errors += _check_alias(options["CACHE"], f"{where}['CACHE']")
    if "SLOTS" in options and not is_valid_slots(options["SLOTS"]):
        errors.append(
            Error(
                f"{where}['SLOTS'] is {options['SLOTS']!r}; it must be a whole number from 1 to "
                f"{MAX_SLOTS}.",
                hint="Use 1 (the default: the namespace in one cluster slot) or e.g. 16 to "
                "spread a large namespace over 16 hash tags of a Redis Cluster.",
                id=E014,
            )
        )
    if "METRICS" in options:
        errors += _check_metrics(options["METRICS"], where)
    for flag in ("FAIL_SILENTLY", "SENSITIVE"):
        if flag in options and not isinstance(options[flag], bool):
            errors.append(
                Error(
                    f"{where}['{flag}'] is {options[flag]!r}; it must be True or False.",
                    hint=f"Set {flag} to True or False.",
                    id=E008,
                )
            )
    return errors


def _check_metrics(metrics: object, where: str) -> list[CheckMessage]:
    """E008 for a METRICS that is neither a bool nor ``"redis"`` (``"redis"`` on a cache that
    is not Redis is E013, in ``checks``: it needs the providers)."""
    if isinstance(metrics, bool) or metrics == "redis":
        return []
    return [
        Error(
            f"{where}['METRICS'] is {metrics!r}; it must be True, False or 'redis'.",
            hint="True counts per process, 'redis' also sums every process in Redis.",
            id=E008,
        )
    ]


def settings_errors() -> list[CheckMessage]:
    """Every mistake in ``AGENTHUB_CACHE`` (errors only; hazards are in ``check_hazards``)."""
    raw = getattr(settings, SETTING, None)
    if raw is None:
        return []
    if not isinstance(raw, Mapping):
        return [
            Error(
                f"{_WHERE} must be a dict, not {type(raw).__name__}.",
                hint='For example {"CACHE": "default", "NAMESPACES": {"signup": {"TTL": 1800}}}.',
                id=E001,
            )
        ]
    errors = _check_options(raw, TOP_LEVEL_OPTIONS, _WHERE, E002)
    alias = raw.get("CACHE", DEFAULT_ALIAS)
    errors += _check_alias(alias, f"{_WHERE}['CACHE']")
    if "DEFAULT_TTL" in raw:
        errors += _check_ttl(raw["DEFAULT_TTL"], f"{_WHERE}['DEFAULT_TTL']")
    declared = raw.get("NAMESPACES", SEED_NAMESPACES)
    if not isinstance(declared, Mapping):
        return [
            *errors,
            Error(
                f"{_WHERE}['NAMESPACES'] must be a dict of namespace name to options.",
                hint='For example {"signup": {"TTL": 1800}}.',
                id=E007,
            ),
        ]
    for name, options in declared.items():
        errors += _check_namespace(name, options, alias)
    return errors


@dataclass(frozen=True)
class DeclaredNamespace:
    """One namespace as declared, read leniently (``declared_namespaces``)."""

    name: str
    #: Its options, ``{}`` where they are not a dict (E007).
    options: Mapping[str, Any]
    #: The ``CACHES`` alias it lives on (its own ``CACHE``, else the top-level one); ``None``
    #: where that is not an alias in ``CACHES`` (E003).
    cache: str | None


def _alias_or_none(alias: object) -> str | None:
    return alias if isinstance(alias, str) and alias in settings.CACHES else None


def default_alias() -> str | None:
    """The top-level ``CACHE`` as far as it is readable: ``None`` where it is no alias (E003)."""
    raw = getattr(settings, SETTING, None) or {}
    return _alias_or_none(raw.get("CACHE", DEFAULT_ALIAS)) if isinstance(raw, Mapping) else None


def declared_namespaces() -> dict[str, DeclaredNamespace] | None:
    """The declared namespaces, even where ``settings_errors()`` finds mistakes, so checks that
    look at namespaces and ``CACHES`` together report beside them rather than after a fix:
    ``None`` only where ``AGENTHUB_CACHE`` or its ``NAMESPACES`` is not a dict (E001, E007)."""
    raw = getattr(settings, SETTING, None) or {}
    if not isinstance(raw, Mapping):
        return None
    declared = raw.get("NAMESPACES", SEED_NAMESPACES)
    if not isinstance(declared, Mapping):
        return None
    fallback = default_alias()
    found = {}
    for name, options in declared.items():
        if not isinstance(name, str):
            continue
        options = options if isinstance(options, Mapping) else {}
        cache = _alias_or_none(options["CACHE"]) if "CACHE" in options else fallback
        found[name] = DeclaredNamespace(name, options, cache)
    return found
