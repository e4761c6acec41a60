"""How ``cache_namespaces`` shows things: aligned tables, JSON documents, values and locations.

Everything a store hands back can hold any character, so text meant for a terminal goes
through ``shown()`` (control characters escaped, long strings cut) and JSON is written with
``ensure_ascii``: no key or value can move the cursor or recolour an operator's terminal.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.core.management.base import OutputWrapper

#: Cells and messages longer than this are cut (a 10 kB key fits no terminal).
MAX_SHOWN = 200


def shown(text: str, limit: int = MAX_SHOWN) -> str:
    """``text`` safe for one line of a terminal: as is when printable, else as a Python literal."""
    if len(text) > limit:
        return shown(text[:limit], limit) + f"... ({len(text)} characters)"
    if text and text.isprintable() and text.strip() == text:
        return text
    return repr(text)


def quoted(text: str, limit: int = 80) -> str:
    """``repr(text)`` cut to ``limit`` characters, for messages that name a user's argument."""
    if len(text) > limit:
        return repr(text[:limit]) + f"... ({len(text)} characters)"
    return repr(text)


def clip(message: str, limit: int = 600) -> str:
    """A message cut in the middle when an argument quoted in it made it too long to read."""
    if len(message) <= limit:
        return message
    cut = len(message) - limit
    return f"{message[: limit - 200]} ...({cut} characters cut)... {message[-200:]}"


def sentence(message: str) -> str:
    """``message`` ending in a full stop, so that a further sentence can follow it."""
    message = message.rstrip()
    return message if message.endswith((".", "!", "?")) else f"{message}."


def short_name(dotted: str) -> str:
    """``"django.core.cache.backends.db.DatabaseCache"`` -> ``"DatabaseCache"``."""
    return dotted.rpartition(".")[2]


def provider_name(dotted: str) -> str:
    """A provider class path shown as ``"Database"``, ``"Redis"`` ... (``"generic"`` for the base)."""
    return short_name(dotted).removesuffix("Provider") or "generic"


def human_ttl(seconds: float | None) -> str:
    """``300`` -> ``"5m"``, ``5400`` -> ``"1h30m"``, ``None`` -> ``"never"``."""
    if seconds is None:
        return "never"
    left = round(seconds)
    if left < 60:
        return f"{left}s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        amount, left = divmod(left, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts[:2])


def yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Left-aligned columns two spaces apart; numbers (and "n/a") aligned right."""
    rows = [[shown(cell) for cell in row] for row in rows]
    widths = [len(header) for header in headers]
    for row in rows:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]
    right = [bool(rows) and all(_numeric(row[i]) for row in rows) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        padded = [
            cell.rjust(width) if align else cell.ljust(width)
            for cell, width, align in zip(cells, widths, right, strict=True)
        ]
        return "  ".join(padded).rstrip()

    return "\n".join([line(headers), *(line(row) for row in rows)])


def _numeric(cell: str) -> bool:
    return cell.replace(",", "").isdigit() or cell in ("n/a", "?", "-")


def fields(pairs: Iterable[tuple[str, str]]) -> str:
    """``label  value`` lines, labels padded to one width."""
    pairs = list(pairs)
    width = max((len(label) for label, _ in pairs), default=0)
    return "\n".join(f"{label.ljust(width)}  {value}".rstrip() for label, value in pairs)


def to_json(data: Any) -> str:
    """The JSON documents of ``--format json``: indented, ASCII-only, no NaN."""
    return json.dumps(data, indent=2, ensure_ascii=True, allow_nan=False, default=repr)


def value_as_json(value: Any) -> tuple[bool, Any]:
    """``(True, value)`` if ``value`` survives a JSON round trip unchanged, else ``(False, None)``.

    A tuple, a dict with int keys, a datetime or bytes would come back different (or not at
    all), so those are shown with ``repr`` instead of being silently changed.
    """
    try:
        if json.loads(json.dumps(value, allow_nan=False)) == value:
            return True, value
    except (TypeError, ValueError, RecursionError):
        pass
    return False, None


def show_value(value: Any) -> tuple[str, Any, str]:
    """``(format, payload, text)``: ``"json"`` or ``"repr"``, what JSON output holds, what a table shows."""
    is_json, payload = value_as_json(value)
    if is_json:
        return "json", payload, json.dumps(payload, indent=2, ensure_ascii=True)
    text = repr(value)
    return "repr", text, printable(text)


def printable(text: str) -> str:
    """Multi-line ``text`` with every other control character escaped (a custom ``__repr__``)."""
    if all(c.isprintable() or c == "\n" for c in text):
        return text
    return "".join(c if c.isprintable() or c == "\n" else repr(c)[1:-1] for c in text)


# -- locations --------------------------------------------------------------------------------

#: Where one URL of a LOCATION starts: its scheme, at the start or after a separator.
_URL_START = re.compile(r"(?:^|(?<=[\s,;]))[A-Za-z][A-Za-z0-9+.-]*://")
_SECRET_QUERY = re.compile(
    r"(?P<name>(?:^|[?&;])(?:password|passwd|pwd|secret|token|auth)=)[^&;#\s]*", re.IGNORECASE
)
MASK = "********"


def _mask_userinfo(url: str) -> str:
    """``url`` (``scheme://...``) with everything before its last ``@`` masked.

    urllib (and so redis-py) reads the userinfo up to the last ``@`` of the authority; a
    password that is not percent-encoded may hold a space, ``/`` or ``?``, so everything up to
    the URL's last ``@`` is taken: a display may hide too much, never a password.
    """
    scheme, _, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not at or userinfo.startswith("/"):  # "unix:///run/a@b.sock": a path, no userinfo
        return url
    user, colon, _password = userinfo.partition(":")
    if not colon:  # "redis://secret@host": a lone userinfo may itself be the password
        return f"{scheme}://{MASK}@{host}"
    return f"{scheme}://{user}:{MASK}@{host}"


def mask_location(location: object) -> str:
    """A ``CACHES`` ``LOCATION`` for display, passwords replaced by ``********``.

    ``redis://user:pw@host:6379/1`` -> ``redis://user:********@host:6379/1``; a password in
    the query string (``?password=pw``) is masked too; lists are joined with ``", "``, and
    so are the URLs of one string (``"redis://:a@h1,redis://:b@h2"``) masked one by one.
    """
    if location is None or location == "":
        return ""
    if isinstance(location, list | tuple):
        return ", ".join(mask_location(each) for each in location)
    text = str(location)
    starts = [match.start() for match in _URL_START.finditer(text)]
    pieces = [text[: starts[0]] if starts else text]
    pieces += (_mask_userinfo(text[a:b]) for a, b in itertools.pairwise([*starts, len(text)]))
    return _SECRET_QUERY.sub(lambda m: m["name"] + MASK, "".join(pieces))


def block(title: str, pairs: Mapping[str, str]) -> str:
    """A title line, then its ``fields`` indented by two spaces."""
    lines = fields(pairs.items()).splitlines()
    return "\n".join([title, *(f"  {line}" for line in lines)])


# -- the tables of each subcommand ------------------------------------------------------------

LOCMEM_NOTE = (
    "Note: a LocMemCache lives inside each process. This command sees and flushes its own "
    "memory only, not a running server's; use a shared store (database, Redis) to manage "
    "namespaces from a second terminal."
)


def list_table(rows: Sequence[Mapping[str, Any]], full_names: bool = False) -> str:
    """``list``: one line per namespace, readable in 100 columns."""
    lines = []
    for row in rows:
        capabilities = row["capabilities"] or {}
        backend, provider = row["backend"] or "?", row["provider"] or "?"
        if row["error"]:
            entries = "error"
        elif row["entries"] is None:
            entries = "n/a"
        else:
            entries = f"{row['entries']:,}"
        lines.append(
            [
                row["namespace"],
                row["cache"],
                backend if full_names else short_name(backend),
                provider if full_names else provider_name(provider),
                human_ttl(row["default_ttl"]),
                entries,
                capabilities.get("indexes", "?"),
                capabilities.get("flush", "?"),
            ]
        )
    headers = ["NAMESPACE", "CACHE", "BACKEND", "PROVIDER", "TTL", "ENTRIES", "INDEXES", "FLUSH"]
    return table(headers, lines)


def list_failures(rows: Sequence[Mapping[str, Any]]) -> str:
    """``list``'s error: one per store (``CACHES`` alias) that failed, its namespaces named once."""
    by_alias: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        if row["error"]:
            by_alias.setdefault(row["cache"], []).append(row)
    failed = sum(len(group) for group in by_alias.values())
    lines = [
        f"Could not read the store of {plural(failed, 'namespace')} "
        f"(on {plural(len(by_alias), 'cache alias', 'cache aliases')}):"
    ]
    for alias, group in by_alias.items():
        names = ", ".join(quoted(row["namespace"]) for row in group)
        lines.append(f"- the {alias!r} cache, for {names}: {group[0]['error']}")
    return "\n".join(lines)


def count_text(count: int | None, unit: str = "") -> str:
    return "n/a" if count is None else f"{count:,}{unit}"


def ttl_text(seconds: int | None, known: bool = True) -> str:
    if not known:
        return "unknown (the store cannot tell)"
    if seconds is None:
        return "never expires"
    return f"{human_ttl(seconds)} ({seconds} s)"


def stats_fields(document: Mapping[str, Any]) -> str:
    """``stats``: the namespace, its store, its counts, then what the provider does natively."""
    known = {
        "namespace", "cache", "backend", "provider", "location", "default_ttl", "sensitive",
        "fail_silently", "entries", "indexes", "memory_bytes", "capabilities", "index_names",
        "metrics",
    }  # fmt: skip
    memory = document["memory_bytes"]
    pairs = [
        ("namespace", document["namespace"]),
        ("cache", document["cache"]),
        ("backend", document["backend"]),
        ("provider", document["provider"]),
        ("location", shown(document["location"]) if document["location"] else "-"),
        ("default TTL", ttl_text(document["default_ttl"])),
        ("sensitive", yes_no(document["sensitive"])),
        ("fail silently", yes_no(document["fail_silently"])),
        ("entries", count_text(document["entries"])),
        ("indexes", count_text(document["indexes"])),
        ("index names", ", ".join(map(shown, document.get("index_names", []))) or "-"),
        ("memory", "n/a" if memory is None else f"{memory:,} bytes ({human_bytes(memory)})"),
    ]
    pairs += [
        (name.replace("_", " "), _cell(v)) for name, v in document.items() if name not in known
    ]
    for name, flag in document["capabilities"].items():
        text = yes_no(flag) if isinstance(flag, bool) else str(flag)
        pairs.append((CAPABILITY_LABELS.get(name, name.replace("_", " ")), text))
    pairs += metric_fields(document.get("metrics", {"enabled": False}))
    return fields(pairs)


def metric_fields(metrics: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``stats``: this process's metrics of the namespace (``METRICS: False``: one line)."""
    if not metrics.get("enabled"):
        return [("metrics", "off (METRICS: False)")]
    latency = metrics["latency"]
    mean = (
        f", mean {latency['sum_seconds'] / latency['count'] * 1000:.3f} ms"
        if latency["count"]
        else ""
    )
    errors = ", ".join(f"{kind} {count:,}" for kind, count in metrics["errors"].items())
    return [
        ("metrics", "this process's own, since it started"),
        ("hits", f"{metrics['hits']:,}"),
        ("misses", f"{metrics['misses']:,}"),
        ("sets", f"{metrics['sets']:,}"),
        ("deletes", f"{metrics['deletes']:,}"),
        ("errors", errors or "none"),
        ("calls", f"{latency['count']:,}{mean}"),
        *_totals_fields(metrics),
    ]


def _totals_fields(metrics: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``METRICS: "redis"``: every process's counts, as pushed to Redis."""
    if "totals" not in metrics:
        return []
    totals = metrics["totals"]
    if totals is None:
        return [("all processes", f"unavailable: {metrics.get('totals_error', '')}")]
    counts = ", ".join(f"{name} {totals[name]:,}" for name in ("hits", "misses", "sets", "deletes"))
    return [("all processes", f"{counts}, calls {totals['latency']['count']:,}")]


#: How ``stats`` names each field of ``Capabilities``.
CAPABILITY_LABELS = {
    "list_keys": "can list keys",
    "flush": "flush by",
    "indexes": "indexes kept",
    "ttl": "reads TTL",
    "distributed_lock": "distributed lock",
    "native_async": "native async",
}


def plural(count: int, word: str, words: str | None = None) -> str:
    """``plural(1, "entry", "entries")`` -> ``"1 entry"``; counts get thousands separators."""
    return f"{count:,} {word if count == 1 else (words or word + 's')}"


def _cell(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return shown(str(value))


def human_bytes(size: float) -> str:
    """``4_400_000`` -> ``"4.2 MiB"``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


class Progress:
    """``progress(done)`` for ``CacheService.clear``: one self-overwriting line on a terminal."""

    INTERVAL = 0.2

    def __init__(self, out: OutputWrapper, namespace: str, expected: int) -> None:
        self.out = out
        self.namespace = namespace
        self.expected = expected
        self.shown_at = 0.0
        self.written = False

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        if now - self.shown_at < self.INTERVAL and done < self.expected:
            return
        self.shown_at = now
        percent = min(100, done * 100 // max(1, self.expected))
        self.out.write(
            f"\r  flushing {self.namespace}: {done:,} of ~{self.expected:,} entries ({percent}%)",
            style_func=str,
            ending="",
        )
        self.out.flush()
        self.written = True

    def finish(self) -> None:
        if self.written:
            self.out.write("", style_func=str)
