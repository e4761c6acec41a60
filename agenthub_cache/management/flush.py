"""``cache_namespaces flush``: show what will go, ask, drop it, say what went and how long it took.

Nothing is touched before every named namespace has been found and, unless ``--noinput``, an
operator at a terminal has typed ``yes``. Each namespace is dropped by ``CacheService.clear``,
which deletes that namespace's keys and nothing else (by prefix, SCAN, or a new generation).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.core.management.base import CommandError

from agenthub_cache import conf
from agenthub_cache.management import render, stores
from agenthub_cache.management.render import plural, quoted
from agenthub_cache.providers.base import StoreScope
from agenthub_cache.service import CacheService

if TYPE_CHECKING:
    from agenthub_cache.management.commands.cache_namespaces import Command

SAMPLE_KEYS = 5
CONFIRM = "Type 'yes' to continue, or 'no' to cancel: "


def is_process_local(service: CacheService) -> bool:
    """The store lives inside each process (LocMem): this command cannot reach a server's."""
    return service.provider.store_scope is StoreScope.PROCESS


@dataclass
class Target:
    """One namespace to flush, and what an operator should see before it goes."""

    service: CacheService
    backend: str
    location: str
    entries: int | None  # None: the store cannot count (a flush by generation)
    sample_keys: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.service.namespace

    def document(self) -> dict[str, Any]:
        return {
            "namespace": self.name,
            "cache": self.service.cache_alias,
            "backend": self.backend,
            "location": self.location,
            "entries": self.entries,
        }


class Flush:
    def __init__(self, command: Command, options: dict[str, Any]) -> None:
        self.command = command
        self.options = options
        self.dry_run = bool(options.get("dry_run"))
        self.interactive = bool(options.get("interactive", True))
        self.verbosity = command.verbosity
        self.json = command.json

    def say(self, text: str, ending: str | None = None) -> None:
        """Text for the operator: stdout, or stderr when stdout carries a JSON document."""
        out = self.command.stderr if self.json else self.command.stdout
        out.write(text, style_func=str, ending=ending)

    def run(self) -> None:
        targets = [self.target(service) for service in self.services()]
        if self.dry_run:
            self.report_dry_run(targets)
            return
        if self.interactive or self.verbosity >= 1:
            self.describe(targets)
        if self.interactive:
            self.confirm(targets)
        results = self.flush(targets)
        self.report(results)

    # -- what to flush ----------------------------------------------------------------------

    def services(self) -> list[CacheService]:
        names: Sequence[Any] = self.options.get("names") or []
        alias = self.options.get("cache")
        configured = list(conf.get_settings().namespaces)
        if self.options.get("all"):
            if names:
                raise CommandError(
                    "Name the namespaces to flush or pass --all, not both: --all already means "
                    f"every configured namespace ({', '.join(configured) or 'none'})."
                )
            if alias is not None:
                raise CommandError(
                    "--all flushes the namespaces configured in settings; --cache reaches one "
                    "namespace that settings do not declare: name it instead (flush NAME --cache "
                    "ALIAS)."
                )
            if not configured:
                raise CommandError(
                    "There is nothing to flush: settings.AGENTHUB_CACHE['NAMESPACES'] is empty."
                )
            names = configured
        elif not names:
            raise CommandError(
                "Name the namespaces to flush (flush NAME [NAME ...]), or pass --all to flush "
                f"every configured namespace: {', '.join(configured) or 'none'}."
            )
        return [stores.service_for(name, alias) for name in dict.fromkeys(names)]

    def target(self, service: CacheService) -> Target:
        target = Target(service, stores.backend_name(service), stores.location(service), None)
        if service.capabilities.list_keys:
            unsupported = "It cannot be flushed by this command; see the provider's docs."
            with stores.store_errors(service, "count", unsupported):
                target.entries = service.count()
                if self.dry_run:
                    sample = itertools.islice(service.iter_keys(), SAMPLE_KEYS)
                    target.sample_keys = sorted(sample)
        return target

    def fields(self, target: Target) -> dict[str, str]:
        pairs = {
            "cache": target.service.cache_alias,
            "backend": target.backend,
            "location": render.shown(target.location) if target.location else "-",
        }
        if target.entries is not None:
            pairs["entries"] = f"{target.entries:,}"
        else:
            pairs["entries"] = "unknown: this store cannot count (a flush starts a new generation)"
        return pairs

    def describe(self, targets: list[Target]) -> None:
        count = len(targets)
        self.say(f"About to flush {count} namespace{'s' if count > 1 else ''}:")
        for target in targets:
            self.say(render.block(f"Namespace {target.name!r}", self.fields(target)))
        self.locmem_note(targets)

    def locmem_note(self, targets: list[Target]) -> None:
        if self.command.from_shell() and any(is_process_local(t.service) for t in targets):
            self.command.note(render.LOCMEM_NOTE)

    # -- asking -----------------------------------------------------------------------------

    def confirm(self, targets: list[Target]) -> None:
        stdin = self.command.stdin
        if stdin is None or getattr(stdin, "closed", False) or not stdin.isatty():
            raise CommandError(
                "Refusing to flush without confirmation: there is no terminal to ask on (stdin "
                "is not a TTY), so nothing was flushed. Re-run with --noinput to flush without "
                "asking, or with --dry-run to see what would go."
            )
        these = (
            "the namespace above" if len(targets) == 1 else f"the {len(targets)} namespaces above"
        )
        self.say(
            f"\nThis deletes every entry and index of {these}, and nothing else.\n"
            f"Are you sure you want to do this?\n\n    {CONFIRM}",
            ending="",
        )
        (self.command.stderr if self.json else self.command.stdout).flush()
        try:
            answer = stdin.readline()
        except KeyboardInterrupt:
            answer = ""
            self.say("")
        if answer.strip() != "yes":
            raise CommandError("Flush cancelled: nothing was flushed.")

    # -- flushing ---------------------------------------------------------------------------

    def flush(self, targets: list[Target]) -> list[tuple[Target, int | None, float]]:
        results: list[tuple[Target, int | None, float]] = []
        for target in targets:
            try:
                dropped, seconds = self.flush_one(target)
            except CommandError as exc:
                done = [t.name for t, _, _ in results]
                left = [t.name for t in targets[len(results) :]]
                if len(targets) > 1:
                    raise CommandError(
                        f"{exc} Already flushed: {', '.join(done) or 'none'}; not flushed: "
                        f"{', '.join(left)}."
                    ) from exc.__cause__
                raise
            results.append((target, dropped, seconds))
        return results

    def flush_one(self, target: Target) -> tuple[int | None, float]:
        service = target.service
        progress = self.command.progress(service, target.entries)
        started = time.monotonic()
        try:
            with stores.store_errors(service, "flush"):
                dropped = service.clear(progress=progress)
        except KeyboardInterrupt:
            raise CommandError(
                f"Flush of namespace {target.name!r} interrupted: it may be partly flushed. Run "
                "the flush again to finish it."
            ) from None
        finally:
            if isinstance(progress, render.Progress):
                progress.finish()
        return dropped, time.monotonic() - started

    # -- reporting --------------------------------------------------------------------------

    def report_dry_run(self, targets: list[Target]) -> None:
        if self.json:
            documents = [
                {**t.document(), "listable": t.entries is not None, "sample_keys": t.sample_keys}
                for t in targets
            ]
            self.command.emit({"dry_run": True, "namespaces": documents})
        for target in targets:
            pairs = self.fields(target)
            if target.entries is not None:
                pairs["entries"] += " would be dropped"
                if target.sample_keys:
                    pairs["sample keys"] = ", ".join(map(quoted, target.sample_keys))
            if not self.json:
                self.say(render.block(f"Namespace {target.name!r} (dry run)", pairs))
        if not self.json:
            self.say("Dry run: nothing was flushed.")
            self.locmem_note(targets)

    def report(self, results: list[tuple[Target, int | None, float]]) -> None:
        total = sum(dropped or 0 for _, dropped, _ in results)
        seconds = sum(s for _, _, s in results)
        if self.json:
            documents = [
                {**t.document(), "dropped": dropped, "seconds": round(s, 3)}
                for t, dropped, s in results
            ]
            self.command.emit(
                {
                    "dry_run": False,
                    "namespaces": documents,
                    "dropped": total,
                    "seconds": round(seconds, 3),
                }
            )
            return
        if self.verbosity < 1:
            return
        for target, dropped, took in results:
            self.command.stdout.write(
                self.summary(target, dropped, took), style_func=self.command.style.SUCCESS
            )
        if len(results) > 1:
            unknown = sum(1 for _, dropped, _ in results if dropped is None)
            extra = (
                f" (and {plural(unknown, 'generation flush')}: count unknown)" if unknown else ""
            )
            self.command.stdout.write(
                f"Flushed {len(results)} namespaces: dropped {plural(total, 'entry', 'entries')}"
                f"{extra} in {seconds:.2f} s.",
                style_func=self.command.style.SUCCESS,
            )

    @staticmethod
    def summary(target: Target, dropped: int | None, seconds: float) -> str:
        where = f"namespace {target.name!r} on cache {target.service.cache_alias!r}"
        if dropped is None:
            return (
                f"Flushed {where} by starting a new generation: its old entries are unreachable "
                f"and expire on their own (their count is unknown). Took {seconds:.2f} s."
            )
        return f"Flushed {where}: dropped {plural(dropped, 'entry', 'entries')} in {seconds:.2f} s."
