"""What the admin pages show, gathered from the services: rows, key pages, values, metrics.

No request or template here (``admin.py`` has those): each function takes a ``CacheService``
from ``namespaces[...]`` and returns plain data. Every read of a store is bounded: a page
reads at most ``MAX_KEYS_READ`` keys by the service's ``iter_keys`` (SCAN on Redis, never
KEYS, and at most ``MAX_SCAN_CALLS`` calls of it), and a value is shown cut to
``MAX_VALUE_CHARS``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from agenthub_cache import conf
from agenthub_cache.exceptions import CacheError, NotSupported
from agenthub_cache.management import render
from agenthub_cache.providers.scanning import ScanBudget
from agenthub_cache.service import CacheService

#: Keys per page when the request names none, and the most it may ask for (clamped).
PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
#: The most keys one page reads from the store (page number x page size, plus one).
MAX_KEYS_READ = 10_000
#: The most SCAN calls one page makes on Redis (each examines about 1,000 of the database's
#: keys): a prefix that matches few keys of a large shared database stops there, not after
#: walking all of it.
MAX_SCAN_CALLS = 100
#: A value's text is cut after this many characters.
MAX_VALUE_CHARS = 20_000
#: The most keys an index look-up lists.
MAX_FOUND = 1_000


def problem(exc: BaseException) -> str:
    """An error as one line for a page: its class and its message, cut short."""
    return render.clip(f"{type(exc).__name__}: {exc}", 400)


def mean_ms(latency: dict[str, Any]) -> float | None:
    count = latency["count"]
    return latency["sum_seconds"] / count * 1000 if count else None


@dataclass
class NamespaceRow:
    """One namespace on the list page."""

    name: str
    alias: str
    backend: str
    default_ttl: str
    fail_silently: bool
    sensitive: bool
    listable: bool
    entries: int | None = None
    index_names: list[str] = field(default_factory=list)
    unavailable: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    url: str = ""  # its namespace page (set by the admin)

    @property
    def errors(self) -> int:
        return sum(self.metrics.get("errors", {}).values())

    @property
    def mean_latency_ms(self) -> float | None:
        return mean_ms(self.metrics["latency"]) if self.metrics.get("enabled") else None


def describe(service: CacheService) -> NamespaceRow:
    """The settings part of a row: never touches the store."""
    return NamespaceRow(
        name=service.namespace,
        alias=service.cache_alias,
        backend=render.short_name(service.provider.describe()["backend"]),
        default_ttl=render.human_ttl(service.default_ttl),
        fail_silently=service.fail_silently,
        sensitive=service.sensitive,
        listable=service.capabilities.list_keys,
    )


def unbuilt_row(name: str, exc: BaseException) -> NamespaceRow:
    """The row of a namespace whose service could not be built (its alias's backend cannot be
    imported or set up): its settings, and "unavailable" with the error."""
    declared = conf.get_settings().namespaces[name]
    backend = str(settings.CACHES.get(declared.cache, {}).get("BACKEND", "no such alias"))
    return NamespaceRow(
        name=name,
        alias=declared.cache,
        backend=render.short_name(backend),
        default_ttl=render.human_ttl(declared.ttl),
        fail_silently=declared.fail_silently,
        sensitive=declared.sensitive,
        listable=False,
        unavailable=problem(exc),
        metrics={"enabled": False},
    )


def namespace_row(service: CacheService) -> NamespaceRow:
    """A row with what the store tells (count, index names); a store that is down (or any
    error) makes the row say "unavailable" with the error instead of failing the page."""
    row = describe(service)
    try:
        stats = service.stats()
    except NotSupported:  # e.g. a KEY_FUNCTION that hides the namespace prefix
        row.listable = False
    except (CacheError, OSError, RuntimeError, ValueError) as exc:
        row.unavailable = problem(exc)
    else:
        row.entries = stats.get("entries")
        row.index_names = list(stats.get("index_names", []))
    row.metrics = service.metrics()
    return row


def key_pattern(prefix: str) -> str:
    """A glob matching the keys that start with ``prefix``, whatever characters it holds."""
    escaped = "".join(f"[{ch}]" if ch in "*?[" else ch for ch in prefix)
    return f"{escaped}*"


@dataclass
class KeyPage:
    """One page of a namespace's keys (in the store's order: SCAN has no other)."""

    keys: list[str]
    page: int
    page_size: int
    has_next: bool
    capped: bool  # the page would read past MAX_KEYS_READ: narrow the prefix instead
    #: The page stopped after MAX_SCAN_CALLS SCAN calls (Redis): it may miss keys, and there
    #: is no next page; ``examined`` is about how many of the store's keys it looked at.
    stopped: bool = False
    examined: int = 0

    @property
    def previous_page(self) -> int | None:
        return self.page - 1 if self.page > 1 else None

    @property
    def next_page(self) -> int | None:
        return self.page + 1 if self.has_next else None


def clamp(raw: object, default: int, low: int, high: int) -> int:
    """A page number or size from a query string: a bad one is the default, then clamped."""
    try:
        number = int(str(raw))
    except ValueError:
        number = default
    return max(low, min(high, number))


def key_page(service: CacheService, prefix: str, page: int, page_size: int) -> KeyPage:
    """Keys ``(page-1)*page_size`` up to ``page*page_size`` of those starting with ``prefix``.

    Raises ``NotSupported`` where the store cannot list its keys."""
    last_page = max(1, MAX_KEYS_READ // page_size)
    capped = page > last_page
    page = min(page, last_page)
    start = (page - 1) * page_size
    budget = ScanBudget(MAX_SCAN_CALLS)
    listed = service.iter_keys(key_pattern(prefix), budget=budget)
    read = list(itertools.islice(listed, start, start + page_size + 1))
    has_next = len(read) > page_size and page < last_page
    return KeyPage(
        read[:page_size], page, page_size, has_next, capped, budget.exhausted, budget.examined
    )


@dataclass
class KeyDetail:
    key: str
    found: bool
    shown_key: str = ""
    ttl: str = ""
    indexes: dict[str, str] = field(default_factory=dict)
    value_type: str = ""
    value_format: str = ""
    value_text: str = ""
    truncated: bool = False
    hidden: bool = False


def key_detail(service: CacheService, key: str) -> KeyDetail:
    """A key's value (pretty-printed, cut, hidden for SENSITIVE namespaces), TTL, indexes."""
    missing = object()
    value = service.get(key, missing)
    if value is missing:
        return KeyDetail(key, found=False, shown_key=render.shown(key))
    detail = KeyDetail(key, True, render.shown(key), value_type=type(value).__name__)
    try:
        remaining = service.ttl(key)
    except NotSupported:
        detail.ttl = "unknown (the store cannot tell)"
    else:
        detail.ttl = "never expires" if remaining is None else render.human_ttl(remaining)
    detail.indexes = service.indexes_of(key)
    if service.sensitive:
        detail.hidden = True
        return detail
    detail.value_format, _, text = render.show_value(value)
    if len(text) > MAX_VALUE_CHARS:
        text, detail.truncated = text[:MAX_VALUE_CHARS], True
    detail.value_text = text
    return detail


def count_or_none(service: CacheService) -> int | None:
    """How many entries a flush would drop, where the store can count them."""
    if not service.capabilities.list_keys:
        return None
    return service.count()


def metric_rows(metrics: dict[str, Any]) -> list[tuple[str, int, float | None]]:
    """``(operation, calls, mean ms)`` for the namespace page's latency table."""
    return [(name, op["count"], mean_ms(op)) for name, op in metrics.get("operations", {}).items()]
