"""Django cache tests that do not pass against ``NamespaceCache``, each with its reason.

``python -m tests.django_cache_suite`` marks every ``EXPECTED_FAILURES`` entry with
``unittest.expectedFailure`` (so one that starts passing fails the run: take it off this list)
and skips every ``NOT_OURS`` and ``TIMING_DEPENDENT`` entry. Keys are ``ClassName.test_name`` of the classes in
``tests/django_cache_classes.py``.
"""

from __future__ import annotations

_CULL = (
    "culling (MAX_ENTRIES, CULL_FREQUENCY) is the job of the store behind the namespace; a "
    "NamespaceCache does not cull, and the system checks reject OPTIONS on one"
)
_DELETE_MANY_QUERIES = (
    "counts SQL queries: Django's delete_many is one DELETE; a namespace on a DatabaseCache "
    "adds one SELECT of the keys' index (meta) records (2 queries for any number of keys)"
)
_GET_MANY_EXPIRED = (
    "sets a 0.01 s timeout and expects the entry gone 0.02 s later: a namespace keeps every "
    "entry at least its timeout in whole seconds (0.01 s -> 1 s, README 'NamespaceCache'), and "
    "the DatabaseCache drops the expiry's fraction, so the entry is still there unless the set "
    "fell in the last 0.02 s or so of a second: it fails most runs and passes a few in a hundred"
)

#: Tests of behaviour NamespaceCache does not have, on purpose.
EXPECTED_FAILURES: dict[str, str] = {
    "NamespaceOverLocMemTests.test_cull": _CULL,
    "NamespaceOverLocMemTests.test_zero_cull": _CULL,
    "NamespaceOverDBTests.test_cull": _CULL,
    "NamespaceOverDBTests.test_zero_cull": _CULL,
    "NamespaceOverRedisTests.test_cull": _CULL,
    "NamespaceOverRedisTests.test_zero_cull": _CULL,
}

#: Tests that do not exercise NamespaceCache at all: they read a backend's private attributes,
#: or replace CACHES with a plain Django backend, so running them would prove nothing of ours.
NOT_OURS: dict[str, str] = {
    # LocMemCacheTests
    "NamespaceOverLocMemTests.test_multiple_caches": "overrides CACHES with plain LocMemCaches",
    "NamespaceOverLocMemTests.test_lru_get": "overrides CACHES with a plain LocMemCache",
    "NamespaceOverLocMemTests.test_lru_set": "overrides CACHES with a plain LocMemCache",
    "NamespaceOverLocMemTests.test_lru_incr": "overrides CACHES with a plain LocMemCache",
    "NamespaceOverLocMemTests.test_locking_on_pickle": "reads LocMemCache._lock",
    "NamespaceOverLocMemTests.test_incr_decr_timeout": "reads LocMemCache._expire_info",
    # DBCacheTests
    "NamespaceOverDBTests.test_cull_queries": (
        "sets DatabaseCache._max_entries on the backend (a NamespaceCache has none: the store "
        "culls) and counts the SQL of the store's cull; it would pass without testing us"
    ),
    "NamespaceOverDBTests.test_delete_many_num_queries": _DELETE_MANY_QUERIES,
    "NamespaceOverDBTests.test_second_call_doesnt_crash": "a createcachetable test",
    "NamespaceOverDBTests.test_createcachetable_dry_run_mode": "a createcachetable test",
    "NamespaceOverDBTests.test_createcachetable_with_table_argument": "a createcachetable test",
    # RedisCacheTests: Django's own RedisCache client, behind the namespace or not there at all
    "NamespaceOverRedisTests.test_incr_write_connection": "patches Django's RedisCacheClient",
    "NamespaceOverRedisTests.test_cache_client_class": "reads RedisCache._class/_cache",
    "NamespaceOverRedisTests.test_get_backend_timeout_method": "tests RedisCache's timeouts",
    "NamespaceOverRedisTests.test_get_connection_pool_index": "reads RedisCache._cache",
    "NamespaceOverRedisTests.test_get_connection_pool": "reads RedisCache._cache",
    "NamespaceOverRedisTests.test_get_client": "reads RedisCache._cache",
    "NamespaceOverRedisTests.test_serializer_dumps": "reads RedisCache._cache._serializer",
    "NamespaceOverRedisTests.test_redis_pool_options": "overrides CACHES with Django's RedisCache",
    "NamespaceOverRedisTests.test_client_driver_info": "reads RedisCache._cache",
}

#: Tests whose outcome against NamespaceCache depends on when in a second they run: skipped,
#: since neither an expected failure nor a pass can be relied on.
TIMING_DEPENDENT: dict[str, str] = {
    "NamespaceOverDBTests.test_get_many_num_queries": _GET_MANY_EXPIRED,
}

#: The same lists for the classes that run another class's tests on another store or setting.
_SAME_AS = {
    "NamespaceOverDjangoRedisTests.": "NamespaceOverRedisTests.",
    "NamespaceOverDBWithTimeZoneTests.": "NamespaceOverDBTests.",
}
for _listing in (EXPECTED_FAILURES, NOT_OURS, TIMING_DEPENDENT):
    _listing.update(
        {
            name.replace(source, copy): reason
            for copy, source in _SAME_AS.items()
            for name, reason in list(_listing.items())
            if name.startswith(source)
        }
    )
