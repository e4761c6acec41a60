"""System checks of ``NamespaceCache`` aliases (a namespace behind Django's cache API): a
namespace stored in one, a loop (E009); a LOCATION that names no namespace (E010, E011);
``CACHES`` options it does not use (E012).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error

from agenthub_cache import conf
from agenthub_cache.checks_aliases import backend_class, is_backend
from agenthub_cache.validation import declared_namespaces, default_alias

E009 = "agenthub_cache.E009"  # a namespace's CACHE is a NamespaceCache alias (a loop)
E010 = "agenthub_cache.E010"  # NamespaceCache LOCATION missing or not a valid namespace name
E011 = "agenthub_cache.E011"  # NamespaceCache LOCATION names no configured namespace
E012 = "agenthub_cache.E012"  # NamespaceCache given options it does not use (TIMEOUT, OPTIONS)

_WHERE = f"settings.{conf.SETTING}"

#: The adapter backend (``agenthub_cache.backends.NamespaceCache``), by the path of its class:
#: matched along the MRO of each alias's backend, so the checks never import it themselves.
NAMESPACE_CACHE = "agenthub_cache.backends.namespace.NamespaceCache"
#: ``CACHES`` keys a NamespaceCache ignores: the namespace's TTL is its default timeout, and the
#: alias the namespace lives on culls and holds the client options.
NAMESPACE_CACHE_UNUSED = {
    "TIMEOUT": "Set the default timeout as the namespace's TTL: "
    "settings.AGENTHUB_CACHE['NAMESPACES'][{name!r}]['TTL'].",
    "OPTIONS": "Put OPTIONS (MAX_ENTRIES, client options) on the cache alias the namespace lives "
    "on, settings.CACHES[{cache!r}].",
}


def _is_namespace_cache(alias: str) -> bool:
    return is_backend(backend_class(alias), NAMESPACE_CACHE)


def _namespace_cache_location(
    alias: str, params: Mapping[str, Any], declared: Mapping[str, Any] | None
) -> list[CheckMessage]:
    """E010 (no LOCATION, or not a valid name); E011 (no such namespace), where the declared
    namespaces are known (``declared``: ``None`` where NAMESPACES is unreadable)."""
    where = f"settings.CACHES[{alias!r}]"
    location = params.get("LOCATION")
    names = list(declared or {})
    known = ", ".join(sorted(names)) or "none"
    fix = f"Set LOCATION to the name of a namespace in {_WHERE}['NAMESPACES'] ({known})."
    if not location:
        return [Error(f"{where} is a NamespaceCache without a LOCATION.", hint=fix, id=E010)]
    if not conf.is_valid_name(location):
        return [
            Error(
                f"{where}['LOCATION'] is {location!r}, which is not a valid namespace name.",
                hint=f"{fix} Namespace names are 1-64 letters, digits, '_', '-' or '.', "
                "starting with a letter or digit.",
                id=E010,
            )
        ]
    if declared is not None and location not in names:
        close = difflib.get_close_matches(location, names, n=1)
        guess = f"Did you mean {close[0]!r}? " if close else ""
        return [
            Error(
                f"{where}['LOCATION'] names the namespace {location!r}, which is not configured.",
                hint=f"{guess}{fix} Or declare {location!r} there.",
                id=E011,
            )
        ]
    return []


def namespace_cache_errors() -> list[CheckMessage]:
    """Mistakes with ``NamespaceCache`` aliases: loops, bad LOCATION, options it ignores.

    Reported beside ``settings_errors()``: each needs only the parts of ``AGENTHUB_CACHE`` it
    reads to be readable (``declared_namespaces``); where those are not, it is left out.
    """
    declared = declared_namespaces()
    # Where each alias was named: the default CACHE once (ad hoc services use it too), and each
    # namespace that names its own.
    named = [(f"{_WHERE}['CACHE']", default_alias(), "the namespaces that name no CACHE")]
    for ns in (declared or {}).values():
        if "CACHE" in ns.options:
            named.append((f"{_WHERE}['NAMESPACES'][{ns.name!r}]['CACHE']", ns.cache, repr(ns.name)))
    errors: list[CheckMessage] = [
        Error(
            f"{where} is {alias!r}, a NamespaceCache alias: cache namespace(s) {which} would be "
            "stored in a namespace, a loop.",
            hint=f"Point {where} at a cache that stores data (Redis, database, memcached, "
            "LocMem), not at a NamespaceCache alias.",
            id=E009,
        )
        for where, alias, which in named
        if alias is not None and _is_namespace_cache(alias)
    ]
    for alias, params in settings.CACHES.items():
        if not _is_namespace_cache(alias):
            continue
        location_errors = _namespace_cache_location(alias, params, declared)
        errors += location_errors
        name = str(params.get("LOCATION") or "")
        target = None if location_errors or declared is None else declared.get(name)
        cache = target.cache if target is not None and target.cache is not None else "..."
        errors += [
            Error(
                f"settings.CACHES[{alias!r}] is a NamespaceCache and does not use {option}.",
                hint=f"Remove {option}. " + hint.format(name=name or "...", cache=cache),
                id=E012,
            )
            for option, hint in NAMESPACE_CACHE_UNUSED.items()
            if option in params
        ]
    return errors
