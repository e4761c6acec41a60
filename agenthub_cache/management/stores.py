"""Finding the namespace an operator names, and saying what to do when its store fails.

Shared by every subcommand (and the flush): a name or ``--cache`` alias that is wrong, a
backend that cannot be loaded, a store that is down or refuses, each becomes a
``CommandError`` naming the namespace and the fix.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.core.cache import InvalidCacheBackendError
from django.core.management.base import CommandError

from agenthub_cache import conf
from agenthub_cache.exceptions import CacheError, CacheUnavailable, NotSupported
from agenthub_cache.factory import CacheFactory
from agenthub_cache.management import render
from agenthub_cache.management.render import quoted
from agenthub_cache.service import CacheService


def service_for(name: Any, alias: Any = None) -> CacheService:
    """The namespace ``name`` as settings declare it, or on the CACHES alias ``--cache``.

    Built without ``FAIL_SILENTLY``: an operator must see that a store is down, not an
    empty namespace.
    """
    declared = conf.get_settings().namespaces
    options = declared.get(name) if isinstance(name, str) else None
    given = "" if alias is None else f" (given with --cache {alias})"
    if alias is None:
        if options is None:
            known = ", ".join(sorted(declared)) or "none"
            close = difflib.get_close_matches(str(name)[:100], list(declared), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise CommandError(
                f"Unknown cache namespace {quoted(str(name))}.{hint} The configured "
                f"namespaces are: {known}. Declare it in settings.AGENTHUB_CACHE['NAMESPACES'], "
                "or pass --cache ALIAS to reach a namespace that settings do not declare."
            )
        alias = options.cache
    if not conf.is_valid_name(name):
        raise CommandError(
            f"Invalid cache namespace name {quoted(str(name))}: use 1-64 letters, digits, "
            "'_', '-' or '.', starting with a letter or digit."
        )
    if not isinstance(alias, str) or alias not in settings.CACHES:
        raise CommandError(
            f"Cache namespace {quoted(str(name))}: --cache {quoted(str(alias))} is not an "
            f"alias in settings.CACHES; use one of: {', '.join(sorted(settings.CACHES))}."
        )
    try:
        return CacheFactory.create_service(name, alias, fail_silently=False)
    except InvalidCacheBackendError as exc:  # BACKEND not importable (an extra not installed)
        raise CommandError(
            f"Cache namespace {quoted(name)}: the {alias!r} cache cannot be loaded: "
            f"{render.sentence(render.clip(str(exc)))} Fix settings.CACHES[{alias!r}]"
            f"['BACKEND'] or install its package{given}."
        ) from exc
    except (CacheError, ValueError) as exc:
        message = render.clip(str(exc))
        if not message.startswith("Cache namespace"):  # e.g. redis-py reading the LOCATION
            message = (
                f"Cache namespace {quoted(name)}: the {alias!r} cache cannot be set up: {message}"
            )
        raise CommandError(f"{message}{given}") from exc


def fails_silently(service: CacheService) -> bool:
    """``FAIL_SILENTLY`` as settings declare it (the command's own services never do)."""
    options = conf.get_settings().namespaces.get(service.namespace)
    return options is not None and options.cache == service.cache_alias and options.fail_silently


def location(service: CacheService) -> str:
    """The alias's CACHES LOCATION, passwords masked."""
    return render.mask_location(settings.CACHES.get(service.cache_alias, {}).get("LOCATION"))


def backend_name(service: CacheService) -> str:
    return str(service.provider.describe()["backend"])


@contextmanager
def store_errors(service: CacheService, action: str, unsupported: str = "") -> Iterator[None]:
    """Turn whatever the store raises into a CommandError that says what to do."""
    name = quoted(service.namespace)
    try:
        yield
    except CommandError:
        raise
    except NotSupported as exc:
        raise CommandError(render.clip(f"{exc} {unsupported}".strip())) from exc
    except CacheUnavailable as exc:
        hint = service.provider.unavailable_hint
        table_hint = f", {hint}" if hint else ""
        where = location(service) or "its LOCATION"
        raise CommandError(
            f"{render.sentence(render.clip(str(exc)))} Check that the store at {where} is up "
            f"and reachable{table_hint}, then run the command again."
        ) from exc
    except (CacheError, ValueError) as exc:  # bad arguments: InvalidKey is a ValueError
        raise CommandError(render.clip(str(exc))) from exc
    except Exception as exc:
        raise CommandError(
            f"Cache namespace {name}: {action} failed on the {service.cache_alias!r} cache: "
            f"{type(exc).__name__}: {render.sentence(render.clip(str(exc)))} Re-run with "
            "--traceback to see where."
        ) from exc
