"""Each test its own slice of every configured namespace, on the shared stores.

``isolate_namespaces()`` gives every ``CACHES`` alias that a configured namespace lives on a
``KEY_PREFIX`` of its own (the alias's prefix plus a random tag), so a test's entries, indexes
and flushes can never meet another test's: not in this process, not in another pytest-xdist
worker on the same Redis. On exit it flushes every configured namespace under that prefix
(nothing else), then restores the settings.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeVar, cast

from django.conf import settings
from django.test.utils import TestContextDecorator, override_settings

from agenthub_cache import conf
from agenthub_cache.exceptions import CacheUnavailable
from agenthub_cache.factory import namespaces

_C = TypeVar("_C", bound=Callable[..., Any])


def uses_database() -> bool:
    """Some configured namespace lives on a ``DatabaseCache`` (its flush needs the database)."""
    from django.core.cache.backends.db import DatabaseCache
    from django.utils.module_loading import import_string

    aliases = {ns.cache for ns in conf.get_settings().namespaces.values()}
    for alias in aliases & set(settings.CACHES):
        try:
            backend = import_string(str(settings.CACHES[alias]["BACKEND"]))
        except (ImportError, KeyError):
            continue
        if isinstance(backend, type) and issubclass(backend, DatabaseCache):
            return True
    return False


def new_tag() -> str:
    """A prefix tag no other test, process or xdist worker will draw."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return f"t{worker}{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class NamespaceIsolation:
    """What ``isolate_namespaces`` did: the tag and each alias's ``KEY_PREFIX`` now."""

    tag: str
    prefixes: dict[str, str] = field(default_factory=dict)


class isolate_namespaces(TestContextDecorator):
    """Configured namespaces see only this block's data: a context manager and a decorator.

    ```python
    with isolate_namespaces() as isolation: ...         # or: async with isolate_namespaces()
    @isolate_namespaces()                                # a def or an async def test
    @isolate_namespaces()                                # a unittest/Django TestCase class:
    class MyTests(SimpleTestCase): ...                   # each test, self.namespace_isolation
    ```
    On a coroutine function the isolation spans the awaited test (not the mere creation of
    the coroutine), and the flush afterwards runs through the namespaces' async API.
    """

    def __init__(self, tag: str | None = None) -> None:
        self.tag = tag
        self._override: override_settings | None = None
        super().__init__(attr_name="namespace_isolation")

    def enable(self) -> NamespaceIsolation:
        if self._override is not None:
            raise RuntimeError("isolate_namespaces() is not reentrant; use a new one.")
        tag = self.tag or new_tag()
        app_settings = conf.get_settings()
        aliases = {app_settings.cache} | {ns.cache for ns in app_settings.namespaces.values()}
        configured = {alias: dict(params) for alias, params in settings.CACHES.items()}
        prefixes = {}
        for alias in sorted(aliases & set(configured)):
            own = str(configured[alias].get("KEY_PREFIX", ""))
            prefixes[alias] = configured[alias]["KEY_PREFIX"] = f"{own}.{tag}" if own else tag
        self._override = override_settings(CACHES=configured)
        self._override.enable()
        return NamespaceIsolation(tag, prefixes)

    def disable(self) -> None:
        try:
            for name in namespaces:
                # A store a test took down cannot be flushed; its data is under the tag anyway.
                with contextlib.suppress(CacheUnavailable):
                    namespaces[name].clear()
        finally:
            self._restore()

    async def adisable(self) -> None:
        """``disable()`` from a running event loop: the flush through ``aclear()``."""
        try:
            for name in namespaces:
                with contextlib.suppress(CacheUnavailable):
                    await namespaces[name].aclear()
        finally:
            self._restore()

    def _restore(self) -> None:
        assert self._override is not None
        self._override.disable()
        self._override = None

    def __enter__(self) -> NamespaceIsolation:  # type: ignore[override]  # stubs: Apps | None
        return self.enable()

    async def __aenter__(self) -> NamespaceIsolation:
        return self.enable()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.adisable()

    def decorate_callable(self, func: _C) -> _C:
        if not inspect.iscoroutinefunction(func):
            return super().decorate_callable(func)

        @functools.wraps(func)
        async def inner(*args: Any, **kwargs: Any) -> Any:
            async with self:
                return await func(*args, **kwargs)

        return cast("_C", inner)


class IsolatedNamespacesMixin:
    """For ``unittest.TestCase`` / Django ``TestCase``: each test in ``isolate_namespaces()``.

    ``self.namespace_isolation`` is the test's ``NamespaceIsolation``.
    """

    namespace_isolation: NamespaceIsolation

    def setUp(self) -> None:
        super().setUp()  # type: ignore[misc]
        isolation = isolate_namespaces()
        self.namespace_isolation = isolation.enable()
        self.addCleanup(isolation.disable)  # type: ignore[attr-defined]
