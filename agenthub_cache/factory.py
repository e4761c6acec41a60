"""The one builder of services: ``CacheFactory`` and the ``namespaces[...]`` handler.

Everything that needs the service of a namespace asks here (the lazy instances, the management
command, the admin, the Django cache adapter), so the settings of a namespace are turned into
a ``CacheService`` in one place. ``namespaces`` is a ``django.utils.connection``
``BaseConnectionHandler``, like ``caches``: one service per namespace and thread (asgiref
``Local``), rebuilt after ``AGENTHUB_CACHE`` or ``CACHES`` change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from asgiref.local import Local
from django.core.signals import setting_changed
from django.utils.connection import BaseConnectionHandler

from agenthub_cache import conf
from agenthub_cache.binding import CacheType, bind_provider
from agenthub_cache.exceptions import UnknownNamespace
from agenthub_cache.service import CacheService

if TYPE_CHECKING:
    from agenthub_cache.providers.base import Provider

    _Handler = BaseConnectionHandler[CacheService]
else:
    _Handler = BaseConnectionHandler  # generic only in django-stubs


class CacheFactory:
    """The seed's factory: providers and services for namespaces, from settings."""

    @staticmethod
    def create_cache(
        cache_type: CacheType | str | None = None,
        namespace: str = "default",
        default_ttl: int | None = conf.DEFAULT_TTL,
        cache: str | None = None,
    ) -> Provider:
        """Return the provider for ``namespace`` on ``cache`` (an alias) or ``cache_type``.

        ``default_ttl`` is accepted for the seed's signature; TTL policy lives in the service.
        """
        return bind_provider(namespace, cache, cache_type)

    @staticmethod
    def create_service(
        name: str, cache: str | None = None, *, fail_silently: bool = True
    ) -> CacheService:
        """The service of namespace ``name`` as settings declare it (TTL, alias, options).

        ``cache`` reaches it on another ``CACHES`` alias, or reaches a namespace the settings
        do not declare (with the default TTL); ``fail_silently=False`` ignores the namespace's
        ``FAIL_SILENTLY`` (an operator must see that a store is down).
        """
        options = conf.get_settings().namespaces.get(name)
        if options is None:
            if cache is None:
                conf.require_namespace(name)  # raises UnknownNamespace, naming the known ones
            return CacheService(name, cache=cache)
        return CacheService(
            name,
            default_ttl=options.ttl,
            cache=cache or options.cache,
            fail_silently=options.fail_silently and fail_silently,
            sensitive=options.sensitive,
            metrics=options.metrics,
        )


class NamespaceHandler(_Handler):
    """``namespaces["signup"]``: each configured service built once per thread, like ``caches``."""

    settings_name = conf.SETTING
    exception_class = UnknownNamespace

    def configure_settings(self, settings: dict[str, Any] | None) -> dict[str, Any]:
        return dict(conf.get_settings().namespaces)

    def create_connection(self, alias: str) -> CacheService:
        return CacheFactory.create_service(alias)

    def __getitem__(self, alias: str) -> CacheService:
        if alias not in self.settings:
            conf.require_namespace(alias)  # raises UnknownNamespace, naming the known ones
        return super().__getitem__(alias)

    def __contains__(self, name: object) -> bool:
        return name in self.settings

    def reset(self) -> None:
        """Forget the settings and built services; the next access rebuilds them."""
        self.__dict__.pop("settings", None)
        self._connections = Local(self.thread_critical)

    def __repr__(self) -> str:
        return f"<NamespaceHandler {list(self)!r}>"


namespaces = NamespaceHandler()


def _reset_namespaces(*, setting: str, **kwargs: Any) -> None:
    if setting in (conf.SETTING, "CACHES"):
        namespaces.reset()


setting_changed.connect(_reset_namespaces, dispatch_uid="agenthub_cache.factory.reset")

__all__ = ["CacheFactory", "CacheType", "NamespaceHandler", "namespaces"]
