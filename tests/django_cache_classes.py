"""Django's own backend test classes, run against ``NamespaceCache`` (see django_cache_suite).

Imported only by ``python -m tests.django_cache_suite``, after it has put Django's
``tests/cache`` package (from the sdist of the installed Django) on ``sys.path`` as ``cache``.
Every alias of Django's test settings (``default``, ``prefix``, ``v2``, ``custom_key``, ...) is a
``NamespaceCache`` on one namespace, ``django-suite``, which lives on the alias ``store``: a
LocMemCache, a DatabaseCache (with ``USE_TZ`` off and on), a django-redis cache or Django's
``RedisCache``.
"""

from __future__ import annotations

import functools
import os
import sys
import unittest
from typing import Any

from cache import tests as django_tests  # type: ignore[import-not-found]
from django.test import override_settings

from tests.django_cache_expected import EXPECTED_FAILURES, NOT_OURS, TIMING_DEPENDENT

NAMESPACE = "django-suite"
AGENTHUB_CACHE = {"CACHE": "store", "NAMESPACES": {NAMESPACE: {"TTL": 300}}}
REDIS_URL_ENV = "AGENTHUB_CACHE_SUITE_REDIS_URL"


def namespace_caches(store: dict[str, Any]) -> dict[str, Any]:
    """Django's test CACHES with every alias a NamespaceCache, plus the ``store`` alias."""
    configured: dict[str, Any] = django_tests.caches_setting_for_tests(
        BACKEND="agenthub_cache.backends.NamespaceCache", LOCATION=NAMESPACE
    )
    configured["store"] = store
    return configured


def _call(method: Any) -> Any:
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        return method(self, *args, **kwargs)

    return call


def mark(cls: type[Any]) -> type[Any]:
    """Apply EXPECTED_FAILURES (expectedFailure), NOT_OURS and TIMING_DEPENDENT (skip) to
    ``cls``'s tests."""
    for listing, decorate in (
        (EXPECTED_FAILURES, lambda reason: unittest.expectedFailure),
        (NOT_OURS, unittest.skip),
        (TIMING_DEPENDENT, unittest.skip),
    ):
        for name, reason in listing.items():
            owner, _, test = name.partition(".")
            if owner != cls.__name__:
                continue
            method = getattr(cls, test, None)
            if method is None:  # a test this Django version does not have
                print(f"note: {name} is not in this Django's tests", file=sys.stderr)
                continue
            # A fresh function per class: expectedFailure marks the function object itself,
            # which the other classes share.
            setattr(cls, test, decorate(reason)(functools.wraps(method)(_call(method))))
    return cls


@mark
@override_settings(
    CACHES=namespace_caches(
        {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "suite"}
    ),
    AGENTHUB_CACHE=AGENTHUB_CACHE,
)
class NamespaceOverLocMemTests(django_tests.LocMemCacheTests):  # type: ignore[misc]
    def setUp(self) -> None:
        # Skip LocMemCacheTests.setUp: it shares LocMemCache._cache between the aliases. Here
        # the aliases share one namespace anyway.
        super(django_tests.LocMemCacheTests, self).setUp()


@mark
@override_settings(
    CACHES=namespace_caches(
        {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "test cache table"}
    ),
    AGENTHUB_CACHE=AGENTHUB_CACHE,
)
class NamespaceOverDBTests(django_tests.DBCacheTests):  # type: ignore[misc]
    pass


@mark
@override_settings(USE_TZ=True)
class NamespaceOverDBWithTimeZoneTests(NamespaceOverDBTests):
    """Django's ``DBCacheWithTimeZoneTests``: the same, with ``USE_TZ = True``."""


@mark
@override_settings(
    CACHES=namespace_caches(
        {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"{os.environ.get(REDIS_URL_ENV, 'redis://127.0.0.1:1')}/3",
        }
    ),
    AGENTHUB_CACHE=AGENTHUB_CACHE,
)
class NamespaceOverRedisTests(django_tests.RedisCacheTests):  # type: ignore[misc]
    # RedisCacheTests is skipped unless Django's own RedisCache is in the settings; our store
    # is a private redis-server the suite starts, so run it.
    __unittest_skip__ = False
    #: RedisCacheTests expects redis' own error for incr of a non-number; a NamespaceCache
    #: raises TypeError on every store.
    incr_decr_type_error = TypeError


@mark
@override_settings(
    CACHES=namespace_caches(
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"{os.environ.get(REDIS_URL_ENV, 'redis://127.0.0.1:1')}/4",
        }
    ),
    AGENTHUB_CACHE=AGENTHUB_CACHE,
)
class NamespaceOverDjangoRedisTests(NamespaceOverRedisTests):
    """The same, on Django's own RedisCache as the store."""


CLASSES = [
    NamespaceOverLocMemTests,
    NamespaceOverDBTests,
    NamespaceOverDBWithTimeZoneTests,
    NamespaceOverRedisTests,
    NamespaceOverDjangoRedisTests,
]
