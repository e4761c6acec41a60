"""``override_namespaces``: change namespaces for a test, like ``override_settings``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.test.utils import TestContextDecorator, override_settings

from agenthub_cache import conf
from agenthub_cache.factory import namespaces


class override_namespaces(TestContextDecorator):
    """Change, add or remove namespaces for a test; a decorator or a context manager.

    ```python
    @override_namespaces(signup={"TTL": 5}, temp=None)          # temp removed
    @override_namespaces({"my.feature": {"CACHE": "redis", "FAIL_SILENTLY": True}})
    ```
    Each namespace's options (``TTL``, ``CACHE``, ``SLOTS``, ``FAIL_SILENTLY``, ...) are merged
    over the ones in force when the override starts; ``None`` removes the namespace. The
    factory's services are rebuilt on entry and on exit, and the result is checked like the
    settings are (a bad option is ``ImproperlyConfigured`` at the first use).
    """

    def __init__(
        self, changes: Mapping[str, Mapping[str, Any] | None] | None = None, /, **by_name: Any
    ) -> None:
        self.changes: dict[str, Mapping[str, Any] | None] = {**(changes or {}), **by_name}
        self._override: override_settings | None = None
        super().__init__()

    def merged(self) -> dict[str, Any]:
        """The ``AGENTHUB_CACHE`` setting this override puts in force."""
        raw = dict(conf.raw_settings())
        declared = raw.get("NAMESPACES", conf.SEED_NAMESPACES)
        merged = {name: dict(options) for name, options in declared.items()}
        for name, options in self.changes.items():
            if options is None:
                merged.pop(name, None)
            else:
                merged[name] = {**merged.get(name, {}), **options}
        return {**raw, "NAMESPACES": merged}

    def enable(self) -> Any:
        self._override = override_settings(**{conf.SETTING: self.merged()})
        self._override.enable()
        _reset()

    def disable(self) -> None:
        assert self._override is not None
        try:
            self._override.disable()
        finally:
            self._override = None
            _reset()


def _reset() -> None:
    """What ``setting_changed`` does, again: no service built before survives the change."""
    conf.get_settings.cache_clear()
    namespaces.reset()
