"""DatabaseCache: list, count and flush with SQL on the cache table; indexes in transactions.

Every index write runs in one transaction that first updates a per-namespace lock row, so
writers of a namespace are serialized across processes (a row lock on PostgreSQL/MySQL, the
write lock on SQLite). What touches no index record takes no lock row: ``incr`` locks only
its entry's row, ``pop`` deletes and counts the rows it deleted. Nothing here ever deletes the whole table: flush selects the
namespace's keys by prefix and deletes exactly those.

The namespace's index-use record (``index_use.py``) is a row like any other. With no
generation to start it, a missing one is written under the index guard: NEVER if no entry is
filed. A flush deletes it with the rest, unless a process may still trust a NEVER of the
namespace: then it leaves a NEVER that says how long. Each indexed write checks, under the
guard, that the record still says INDEXED: a flush, or culling, may have deleted it, and a
NEVER written since would otherwise stand beside the new filings.
"""

from __future__ import annotations

import base64
import pickle
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime
from typing import Any, ClassVar, cast

from django.core.cache.backends.db import DatabaseCache
from django.db import InterfaceError, OperationalError, connections, models, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils.timezone import now as tz_now

from agenthub_cache import keys
from agenthub_cache.exceptions import NotSupported
from agenthub_cache.providers.base import Capabilities, Flush, IndexMode, NotAnInteger
from agenthub_cache.providers.generic import INCR_ATTEMPTS
from agenthub_cache.providers.index_use import (
    INDEXED,
    TRUST_SECONDS,
    IndexUseChanged,
    is_indexed,
    new_record,
    trust_may_last,
)
from agenthub_cache.providers.listing import ListingProvider
from agenthub_cache.providers.pickling import check_picklable

BATCH = 500  # keys per DELETE ... IN (...), well under every database's parameter limit


class DatabaseProvider(ListingProvider):
    @property
    def store(self) -> DatabaseCache:
        return cast(DatabaseCache, self.backend)

    capabilities: ClassVar[Capabilities] = Capabilities(
        list_keys=True,
        flush=Flush.PREFIX,
        indexes=IndexMode.CROSS_PROCESS,
        ttl=True,
        distributed_lock=True,
    )
    unavailable_hint: ClassVar[str] = "and that 'manage.py createcachetable' has created its table"
    #: DatabaseCache drops the expiry's fraction: ``ttl=1`` written late in a second was gone
    #: within 0.1 s. Through ``NamespaceCache`` it keeps Django's rule (Django's tests expect it).
    whole_second_expiry = True
    django_drops_fraction = True
    unavailable_errors = (ConnectionError, TimeoutError, InterfaceError, OperationalError)

    def _connection(self, write: bool = False) -> BaseDatabaseWrapper:
        route = router.db_for_write if write else router.db_for_read
        return connections[route(self.store.cache_model_class)]

    def _sql(self, connection: BaseDatabaseWrapper, template: str) -> str:
        quote = connection.ops.quote_name
        return template.format(
            table=quote(cast(Any, self.store)._table),
            key=quote("cache_key"),
            value=quote("value"),
            expires=quote("expires"),
        )

    def _expires(self, connection: BaseDatabaseWrapper, value: Any) -> datetime:
        """Read an ``expires`` column the way DatabaseCache does (aware or naive alike)."""
        expression = models.Expression(output_field=models.DateTimeField())
        for convert in connection.ops.get_db_converters(expression) + expression.get_db_converters(
            connection
        ):
            value = convert(value, expression, connection)
        result: datetime = value
        return result

    def read_guard(self) -> AbstractContextManager[Any]:
        """None: a value and its index records commit together, and one SELECT reads both."""
        return nullcontext()

    @contextmanager
    def index_guard(self) -> Iterator[None]:
        """Process lock, then a transaction holding the namespace's lock row."""
        with self._lock:
            connection = self._connection(write=True)
            with transaction.atomic(using=connection.alias):
                lock_row = self.backend.make_key(keys.build_key(self.namespace, keys.LOCK))
                update = self._sql(
                    connection, "UPDATE {table} SET {expires} = {expires} WHERE {key} = %s"
                )
                with connection.cursor() as cursor:
                    cursor.execute(update, [lock_row])
                    if cursor.rowcount == 0:
                        self.backend.add(keys.build_key(self.namespace, keys.LOCK), 0, None)
                        cursor.execute(update, [lock_row])
                yield

    # -- the index-use record -------------------------------------------------------------------

    def index_use_missing(self, scope: str | None) -> Any:
        """Write the missing record, under the index guard so that no filing runs meanwhile:
        INDEXED if an entry is filed, else NEVER. In a namespace that holds nothing at all
        (a new one, or flushed when nobody trusted its record) nobody can trust an earlier
        NEVER; in one that holds entries its record was lost (culled, or written by an earlier
        release), and a NEVER it held may be trusted for ``TRUST_SECONDS`` more."""
        key = self.index_use_key(scope)
        with self.index_guard():
            record = self.backend.get(key)
            if record is None:
                now = time.time()
                filed = self._holds_any(f"{keys.META}:")
                empty = not filed and not self._holds_any()
                if filed:
                    record = (INDEXED, now + TRUST_SECONDS)
                else:
                    record = new_record(now, 0.0 if empty else now + TRUST_SECONDS)
                self.backend.set(key, record, None)
        return record

    def _holds_any(self, suffix: str = "") -> bool:
        """Whether a row of the namespace (its lock row aside) has a key that starts with its
        prefix and ``suffix``: one row, at most, read (``True`` where a KEY_FUNCTION hides the
        prefix, and it cannot tell)."""
        try:
            prefix = self.stored_prefix() + suffix
        except NotSupported:
            return True
        connection = self._connection(write=True)  # where the guard's transaction runs
        like = cast(Any, connection).operators["startswith"] % "%s"
        query = (
            self._sql(connection, "SELECT {key} FROM {table} WHERE {key} <> %s AND {key} ")
            + like
            + " "
            + connection.ops.limit_offset_sql(0, 1)
        )
        lock_row = self.backend.make_key(keys.build_key(self.namespace, keys.LOCK))
        pattern = connection.ops.prep_for_like_query(prefix) + "%"
        with connection.cursor() as cursor:
            cursor.execute(query, [lock_row, pattern])
            return cursor.fetchone() is not None

    def confirm_indexed(self, scope: str | None) -> None:
        if not is_indexed(self.backend.get(self.index_use_key(scope))):
            self.forget_index_use()
            raise IndexUseChanged

    def clear(self, progress: Callable[[int], None] | None = None) -> int:
        """Every row of the namespace deleted, its index-use record too, unless a process may
        still trust a NEVER of it: then a NEVER that no one trusts until that trust has run
        out is left, so that the next first indexed write waits for it."""
        key = self.index_use_key(None)
        with self.index_guard():
            record = self.backend.get(key)
            if record is not None:
                trusted = trust_may_last(record, time.time())
            else:  # lost, if the namespace holds anything (as ``index_use_missing`` takes it)
                trusted = self._holds_any()
            cleared = super().clear(progress)
            if trusted:
                now = time.time()
                self.backend.set(key, new_record(now, now + TRUST_SECONDS), None)
        self.forget_index_use()
        return cleared

    def incr(self, key: str, delta: int, timeout: float | None) -> int:
        """Add ``delta`` in a short transaction that locks the entry's own row (not the
        namespace's lock row: counters of one namespace do not queue on each other); a missing
        or expired entry is started at ``delta`` by Django's ``add``."""
        stored = self.entry_key(key, self.scope())
        raw = self.backend.make_key(stored)
        connection = self._connection(write=True)
        try:
            for _ in range(INCR_ATTEMPTS):
                counted = self._incr_row(connection, raw, delta)
                if counted is not None:
                    return counted
                if self.backend.add(stored, delta, timeout):
                    return delta
                # another writer's add won: its row is there to lock next round
        except NotAnInteger as exc:
            raise self.not_an_integer(key, str(exc)) from exc
        self.backend.add(stored, delta, timeout)  # a row that vanished every round (popped)
        return delta

    def _incr_row(self, connection: BaseDatabaseWrapper, raw: str, delta: int) -> int | None:
        """The live row's value plus ``delta``, written back while the row is locked (the first
        statement writes, so SQLite takes its write lock at once, as PostgreSQL and MySQL lock
        the row); ``None`` if there is no live row (an expired one is deleted)."""
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute(
                self._sql(connection, "UPDATE {table} SET {expires} = {expires} WHERE {key} = %s"),
                [raw],
            )
            if cursor.rowcount == 0:
                return None
            cursor.execute(
                self._sql(connection, "SELECT {value}, {expires} FROM {table} WHERE {key} = %s"),
                [raw],
            )
            text, expires = cursor.fetchone()
            if self._expires(connection, expires) < tz_now():  # as DatabaseCache.get sees it
                cursor.execute(self._sql(connection, "DELETE FROM {table} WHERE {key} = %s"), [raw])
                return None
            # DatabaseCache's own encoding of a value: pickled, then base64.
            clob = connection.ops.process_clob(text)
            value = pickle.loads(base64.b64decode(clob.encode(), validate=True))
            if isinstance(value, bool) or not isinstance(value, int):
                raise NotAnInteger(f"it holds a {type(value).__name__}")
            pickled = pickle.dumps(value + delta, self.store.pickle_protocol)
            cursor.execute(
                self._sql(connection, "UPDATE {table} SET {value} = %s WHERE {key} = %s"),
                [base64.b64encode(pickled).decode("latin1"), raw],
            )
            return value + delta

    def set_many(self, mapping: Mapping[str, Any], timeout: float | None) -> list[str]:
        check_picklable(
            mapping.values()
        )  # Django writes row by row: a rejected batch writes nothing
        return super().set_many(mapping, timeout)

    def delete_entries(self, stored_keys: list[str]) -> int:
        """One ``DELETE ... IN`` per ``BATCH`` keys, as ``DatabaseCache.delete_many``, counted."""
        return self.delete_stored([self.backend.make_key(stored) for stored in stored_keys])

    def list_stored(self, prefix: str, live_only: bool) -> list[str]:
        connection = self._connection()
        like = cast(Any, connection).operators["startswith"] % "%s"
        query = self._sql(connection, "SELECT {key}, {expires} FROM {table} WHERE {key} ") + like
        pattern = connection.ops.prep_for_like_query(prefix) + "%"
        with connection.cursor() as cursor:
            cursor.execute(query, [pattern])
            rows = cursor.fetchall()
        now = tz_now()
        return [
            key
            for key, expires in rows
            if key.startswith(prefix)
            and (not live_only or self._expires(connection, expires) > now)
        ]

    def delete_stored(self, stored_keys: list[str]) -> int:
        connection = self._connection(write=True)
        deleted = 0
        with connection.cursor() as cursor:
            for start in range(0, len(stored_keys), BATCH):
                batch = stored_keys[start : start + BATCH]
                placeholders = ", ".join(["%s"] * len(batch))
                cursor.execute(
                    self._sql(connection, "DELETE FROM {table} WHERE {key} IN ")
                    + f"({placeholders})",
                    batch,
                )
                deleted += cursor.rowcount
        return deleted

    def stored_ttl(self, stored: str) -> float | None:
        connection = self._connection()
        with connection.cursor() as cursor:
            cursor.execute(
                self._sql(connection, "SELECT {expires} FROM {table} WHERE {key} = %s"),
                [self.backend.make_key(stored)],
            )
            row = cursor.fetchone()
        if row is None:
            return 0.0
        expires = self._expires(connection, row[0])
        if expires.year == datetime.max.year:
            return None
        return max(0.0, (expires - tz_now()).total_seconds())
