"""``manage.py cache_namespaces``: see and drop one feature's cached data from the shell.

::

    cache_namespaces list                                   every configured namespace
    cache_namespaces stats NAME                             entries, indexes, memory, capabilities
    cache_namespaces keys NAME [--pattern GLOB] [--limit N] the keys of a namespace
    cache_namespaces get NAME KEY [--show-values]           one value and its remaining TTL
    cache_namespaces delete NAME KEY [KEY ...]              delete entries
    cache_namespaces find NAME INDEX VALUE                  keys filed under INDEX = VALUE
    cache_namespaces prune NAME                             reclaim dead index members
    cache_namespaces flush NAME [NAME ...] | --all          drop namespaces, after asking

Data goes to stdout (``--format json`` for scripts), notes and progress to stderr. Every failure
is a ``CommandError``: exit status 1, a message naming the namespace and what to do, no traceback.
"""

from __future__ import annotations

import itertools
import sys
import time
from typing import Any

from django.core.checks import Tags
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import (
    BaseCommand,
    CommandError,
    CommandParser,
)

from agenthub_cache import conf
from agenthub_cache.exceptions import NotSupported
from agenthub_cache.management import arguments, render, stores
from agenthub_cache.management.arguments import FORMATS
from agenthub_cache.management.flush import Flush, is_process_local
from agenthub_cache.management.render import quoted
from agenthub_cache.service import CacheService

#: Flushes of more entries than this show progress on stderr, when stderr is a terminal.
PROGRESS_THRESHOLD = 10_000
_MISSING: Any = object()


class Command(BaseCommand):
    help = (
        "Inspect and flush agenthub_cache namespaces: list, stats, keys, get, delete, find, "
        "prune, flush. Run 'cache_namespaces SUBCOMMAND --help' for each one's options."
    )
    requires_system_checks = [Tags.caches]
    #: ``call_command(..., stdin=file)`` reads the flush confirmation from ``file`` (as in
    #: Django's ``createsuperuser``); by default it is ``sys.stdin``.
    stealth_options = ("stdin",)

    # -- arguments --------------------------------------------------------------------------

    def add_arguments(self, parser: CommandParser) -> None:
        arguments.add_subcommands(parser)

    # -- dispatch ---------------------------------------------------------------------------

    def handle(self, *args: Any, **options: Any) -> None:
        self.verbosity: int = options["verbosity"]
        self.stdin: Any = options.get("stdin") or sys.stdin
        output = options.get("format", "table")
        if output not in FORMATS:
            raise CommandError(f"--format must be one of {', '.join(FORMATS)}, not {output!r}.")
        self.json = output == "json"
        try:
            conf.get_settings()
        except ImproperlyConfigured as exc:
            raise CommandError(
                f"settings.AGENTHUB_CACHE is invalid: {exc} Run 'manage.py check' to see every "
                "problem."
            ) from exc
        getattr(self, f"do_{options['subcommand']}")(options)

    def emit(self, data: Any) -> None:
        self.stdout.write(render.to_json(data))

    def note(self, text: str, verbosity: int = 1) -> None:
        """A remark for people, on stderr: never mixed into the data on stdout."""
        if self.verbosity >= verbosity:
            self.stderr.write(text, style_func=self.style.WARNING)

    # -- list and stats -------------------------------------------------------------------

    def do_list(self, options: dict[str, Any]) -> None:
        rows: list[dict[str, Any]] = []
        process_local = False
        for name in conf.get_settings().namespaces:
            row, service = self.list_row(name)
            rows.append(row)
            process_local |= service is not None and is_process_local(service)
        failed = [row["namespace"] for row in rows if row["error"]]
        if self.json:
            self.emit({"namespaces": rows})
        elif not rows:
            self.note("No namespaces are configured in settings.AGENTHUB_CACHE['NAMESPACES'].")
        else:
            self.stdout.write(render.list_table(rows, full_names=self.verbosity >= 2))
            if self.verbosity >= 1 and any(r["entries"] is None and not r["error"] for r in rows):
                self.stdout.write("n/a: the store cannot count its entries (memcached, files).")
            if process_local and self.from_shell():
                self.note(render.LOCMEM_NOTE)
        if failed:
            raise CommandError(render.list_failures(rows))

    def list_row(self, name: str) -> tuple[dict[str, Any], CacheService | None]:
        options = conf.get_settings().namespaces[name]
        row: dict[str, Any] = {
            "namespace": name,
            "cache": options.cache,
            "backend": None,
            "provider": None,
            "default_ttl": options.ttl,
            "entries": None,
            "sensitive": options.sensitive,
            "fail_silently": options.fail_silently,
            "capabilities": None,
            "error": None,
        }
        service = None
        try:
            service = stores.service_for(name)
            row.update(service.provider.describe())
            row.pop("alias", None)
            row.pop("location", None)
            row["capabilities"] = service.capabilities.as_dict()
            if service.capabilities.list_keys:
                with stores.store_errors(service, "count"):
                    row["entries"] = service.count()
            else:  # it cannot count, but an operator must still see that it is down
                with stores.store_errors(service, "list"):
                    service.stats()
        except CommandError as exc:
            if not isinstance(exc.__cause__, NotSupported):
                row["error"] = str(exc)
        except Exception as exc:  # a broken alias must not hide the other namespaces
            row["error"] = f"{type(exc).__name__}: {exc}"
        return row, service

    def do_stats(self, options: dict[str, Any]) -> None:
        service = stores.service_for(options["name"], options.get("cache"))
        with stores.store_errors(service, "stats"):
            stats = service.stats()
        stats.pop("alias", None)
        document = {
            "namespace": service.namespace,
            "cache": service.cache_alias,
            "backend": stats.pop("backend"),
            "provider": stats.pop("provider"),
            "location": stores.location(service),
            "default_ttl": stats.pop("default_ttl"),
            "sensitive": service.sensitive,
            "fail_silently": stores.fails_silently(service),
            "entries": stats.pop("entries", None),
            "indexes": stats.pop("indexes", None),
            "index_names": stats.pop("index_names", []),
            "memory_bytes": stats.pop("memory_bytes", None),
            "capabilities": stats.pop("capabilities"),
            "metrics": service.metrics(),  # this process's (the command's own calls included)
        }
        stats.pop("namespace", None)
        stats.pop("location", None)  # a provider's own may hold a password: shown masked above
        document.update(stats)
        if self.json:
            self.emit(document)
        else:
            self.stdout.write(render.stats_fields(document))

    # -- keys and entries -----------------------------------------------------------------

    def do_keys(self, options: dict[str, Any]) -> None:
        service = stores.service_for(options["name"], options.get("cache"))
        pattern, limit = options["pattern"], options["limit"]
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise CommandError(f"--limit must be a whole number >= 0, not {limit!r}.")
        unsupported = (
            "Read one entry with 'get NAME KEY', or drop the whole namespace with 'flush NAME'."
        )
        with stores.store_errors(service, "keys", unsupported):
            found = list(
                itertools.islice(service.iter_keys(pattern), (limit or None) and limit + 1)
            )
        truncated = bool(limit) and len(found) > limit
        found = sorted(found[:limit] if limit else found)
        if self.json:
            self.emit(
                {
                    "namespace": service.namespace,
                    "pattern": pattern,
                    "limit": limit,
                    "keys": found,
                    "truncated": truncated,
                }
            )
            return
        for key in found:
            self.stdout.write(render.shown(key))
        if truncated:
            self.note(
                f"... more keys match: only the first {limit} are shown (--limit 0 shows all)."
            )
        elif not found:
            self.note(f"No key of namespace {quoted(service.namespace)} matches {quoted(pattern)}.")
        else:
            self.note(f"{render.plural(len(found), 'key')}.", verbosity=2)

    def do_get(self, options: dict[str, Any]) -> None:
        service = stores.service_for(options["name"], options.get("cache"))
        key = options["key"]
        with stores.store_errors(service, "get"):
            value = service.get(key, _MISSING)
        if value is _MISSING:
            if service.capabilities.list_keys:
                hint = f"'cache_namespaces keys {service.namespace}' lists what it holds."
            else:  # memcached, the file cache: only the indexes can say which keys exist
                hint = (
                    f"The {service.cache_alias!r} cache cannot list its keys; 'cache_namespaces "
                    f"find {service.namespace} INDEX VALUE' lists the keys filed under an index."
                )
            raise CommandError(
                f"Cache namespace {quoted(service.namespace)} has no entry {quoted(str(key))}: it "
                f"may have expired or been deleted. {hint}"
            )
        ttl, ttl_known = self.remaining_ttl(service, key)
        hidden = service.sensitive and not options.get("show_values")
        value_format, payload, text = ("hidden", None, "") if hidden else render.show_value(value)
        if self.json:
            self.emit(
                {
                    "namespace": service.namespace,
                    "key": key,
                    "ttl": ttl,
                    "ttl_known": ttl_known,
                    "type": type(value).__name__,
                    "value_format": value_format,
                    "value": payload,
                }
            )
            return
        pairs = [
            ("namespace", service.namespace),
            ("key", render.shown(key)),
            ("ttl", render.ttl_text(ttl, ttl_known)),
            ("type", type(value).__name__),
        ]
        if hidden:
            pairs.append(
                (
                    "value",
                    f"hidden: namespace {service.namespace!r} is SENSITIVE in settings "
                    "(--show-values prints it)",
                )
            )
            self.stdout.write(render.fields(pairs))
            return
        self.stdout.write(render.fields(pairs))
        self.stdout.write(f"value ({value_format}):")
        self.stdout.write(text)

    def remaining_ttl(self, service: CacheService, key: str) -> tuple[int | None, bool]:
        """``(seconds or None for never, known)``; stores that cannot tell give ``(None, False)``."""
        try:
            with stores.store_errors(service, "ttl"):
                return service.ttl(key), True
        except CommandError as exc:
            if isinstance(exc.__cause__, NotSupported):
                return None, False
            raise

    def do_delete(self, options: dict[str, Any]) -> None:
        service = stores.service_for(options["name"], options.get("cache"))
        deleted: list[str] = []
        missing: list[str] = []
        with stores.store_errors(service, "delete"):
            for key in options["keys"]:  # every key must be valid before any is deleted
                service.make_key(key)
            for key in options["keys"]:
                (deleted if service.delete(key) else missing).append(key)
        if self.json:
            self.emit({"namespace": service.namespace, "deleted": deleted, "missing": missing})
            return
        if self.verbosity >= 1:
            self.stdout.write(
                f"Deleted {len(deleted)} of {render.plural(len(options['keys']), 'key')} from "
                f"namespace {service.namespace!r}."
            )
            for key in missing:
                self.stdout.write(f"  not found: {render.shown(key)}")

    def do_find(self, options: dict[str, Any]) -> None:
        service = stores.service_for(options["name"], options.get("cache"))
        index, value = options["index"], options["value"]
        with stores.store_errors(service, "find"):
            found = sorted(service.find(index, value))
        if self.json:
            self.emit(
                {"namespace": service.namespace, "index": index, "value": value, "keys": found}
            )
            return
        for key in found:
            self.stdout.write(render.shown(key))
        if not found:
            self.note(
                f"No live entry of namespace {quoted(service.namespace)} is filed under "
                f"{quoted(index)} = {quoted(value)}."
            )

    def do_prune(self, options: dict[str, Any]) -> None:
        service = stores.service_for(options["name"], options.get("cache"))
        started = time.monotonic()
        with stores.store_errors(service, "prune"):
            pruned = service.prune()
        seconds = round(time.monotonic() - started, 3)
        if self.json:
            self.emit({"namespace": service.namespace, "pruned": pruned, "seconds": seconds})
        elif self.verbosity >= 1:
            self.stdout.write(
                f"Pruned {render.plural(pruned, 'dead index member')} from namespace "
                f"{service.namespace!r} in {seconds:.2f} s."
            )

    # -- flush ------------------------------------------------------------------------------

    def do_flush(self, options: dict[str, Any]) -> None:
        Flush(self, options).run()

    def from_shell(self) -> bool:
        """Run from ``manage.py`` (its own process), not through ``call_command``."""
        return bool(getattr(self, "_called_from_command_line", False))

    def progress(self, service: CacheService, expected: int | None) -> render.Progress | None:
        """A progress line on stderr for long flushes, when stderr is a terminal."""
        if expected is None or expected <= PROGRESS_THRESHOLD or not self.stderr.isatty():
            return None
        return render.Progress(self.stderr, service.namespace, expected)
