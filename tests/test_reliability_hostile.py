"""Hostile input on every backend of the contract suite, with canaries that must stay untouched.

Hypothesis draws namespace names, keys, index names, index values, glob patterns and values
from full Unicode (lone surrogates included) plus ``* ? [ ] \\ { } : % @``, space and control
characters, and long strings. For each draw, on each backend alias:

* the namespace and each call either work or raise ``InvalidKey`` (and only for what is
  really invalid: a bad name, an empty or non-UTF-8 key, a key too long for a store that
  cannot hash it);
* the key builder stays injective end to end: every key reads back its own value, every
  index value finds exactly the keys filed under it, ``keys(pattern)`` lists exactly the
  namespace's own matching keys;
* seeded canaries are never read, listed or deleted, through the API or the management
  command: another namespace on the same alias with glob-like keys and indexes, plain Django
  keys beside them, and (on Redis) raw keys shaped like the app's. On Redis the server
  itself proves "never read": canaries start with an LFU counter of 0 (``RESTORE ... FREQ 0``,
  decay off), and ``OBJECT FREQ`` counts every access, reads included.

Then the memcached boundaries: 250 bytes after the prefix and UTF-8 (hashed, never
collided, never refused by the client), and values over memcached's 1 MB item size.
"""

from __future__ import annotations

import fnmatch
import io
import json
import re
import secrets
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.core.cache import caches
from django.core.management import CommandError, call_command
from django.test.utils import override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agenthub_cache import CacheService, InvalidKey, NotSupported, conf, keys
from agenthub_cache.providers.redis import RedisProvider
from tests import servers
from tests.conftest import BACKENDS, BEFORE_REDIS7, make_service
from tests.reliability import Profile, Tally, full_profile, record, short_profile

pytestmark = pytest.mark.filterwarnings("error")

SPECIALS = [*"*?[]\\{}:%@ ", *map(chr, range(32)), "\x7f"]
CHAR = st.one_of(
    st.sampled_from(SPECIALS),
    st.characters(exclude_categories=()),  # every code point, lone surrogates included
)
TEXT = st.text(alphabet=CHAR, max_size=24)
LONG = st.text(alphabet=CHAR, min_size=200, max_size=320)
KEY = st.one_of(TEXT, TEXT, TEXT, LONG)
VALUE = st.one_of(
    TEXT,
    st.binary(max_size=64),
    st.integers(),
    st.floats(allow_nan=False),
    st.lists(TEXT, max_size=3),
    st.dictionaries(TEXT, st.integers(), max_size=3),
)
VALID_NAME = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,20}", fullmatch=True)
INDEX_NAME = st.one_of(VALID_NAME, VALID_NAME, TEXT)
PATTERN = st.one_of(st.sampled_from(["*", "?", "[", "[!a]", "\\", "*:*", "k:*", "[*]", "**"]), TEXT)

#: Keys of the canary namespace: glob characters, separators, escapes, app-shaped keys.
CANARY_KEYS = ["*", "?", "[x]", "\\", "{t}", ":", "k:x", "a%3Ab", "%", "ahc:x:k:y", "ü", " ", "\n"]
#: Plain Django keys next to the app's (safe for every backend's key check).
PLAIN_KEYS = ["*", "?", "[a]", "ahc", "ahc:", "ahc:*", "ahc:%2A:k:x", "k:x", "%2A", "{x}"]
#: Raw Redis keys, written past Django: shaped like the app's stored keys, but none of them.
RAW_KEYS = [
    "*",
    "ahc:*",
    ":1:ahc:*",
    "dr:2:ahc:x:k:y",
    "dr:1:ahc:x:k",
    "dr:1:ahc::k:x",
    "dr:1:ahcx:k:y",
    "dj:1:ahc:x:i:",
]


def cases() -> list[Any]:
    out = []
    for profile in (short_profile(), full_profile()):
        marks = [pytest.mark.slow] if profile.full else []
        out += [
            pytest.param(alias, profile, id=f"{alias}-{profile.name}", marks=marks)
            # BEFORE_REDIS7's scripts differ from redis's only in how they compute index
            # scores, and its connection stays on its own server (the access counts need
            # the LFU one)
            for alias in BACKENDS
            if alias != BEFORE_REDIS7
        ]
    return out


@pytest.fixture(scope="module")
def lfu_server() -> Iterator[servers.Server]:
    """A Redis that counts every access of a key (no eviction: ``maxmemory`` is unlimited)."""
    server = servers.redis_server(
        None, "--maxmemory-policy", "allkeys-lfu", "--lfu-decay-time", "0"
    ).start()
    yield server
    server.stop()


@pytest.fixture
def caches_on_lfu(stores: dict[str, Any], lfu_server: servers.Server) -> Iterator[dict[str, Any]]:
    """The contract suite's CACHES, its two Redis aliases moved to the counting server."""
    moved = {**stores}
    for alias, db in (("redis", 1), ("redis_django", 2)):
        moved[alias] = {**stores[alias], "LOCATION": f"{lfu_server.url}/{db}"}
    with override_settings(CACHES=moved):
        yield moved


class Canaries:
    """Canaries on one alias: seeded once, checked after every example and at the end."""

    def __init__(self, alias: str, tally: Tally) -> None:
        self.alias, self.tally = alias, tally
        self.token = uuid.uuid4().hex
        self.namespace = f"cn{self.token[:10]}"
        self.svc = make_service(alias, self.namespace, default_ttl=3600)
        self.values = {key: self.sentinel(f"ns:{i}") for i, key in enumerate(CANARY_KEYS)}
        self.redis: redis.Redis | None = None
        self.raw_values: dict[bytes, bytes] = {}
        self.freq_keys: list[bytes] = []

    def sentinel(self, label: str) -> str:
        return f"CANARY:{self.token}:{label}"

    @property
    def near_misses(self) -> list[str]:
        ns = self.namespace
        return [f"{ns}x", f"{ns}.", f"{ns}-", ns[:-1], f"{ns}.k", f"{ns}_"]

    def seed(self) -> None:
        for i, (key, value) in enumerate(self.values.items()):
            self.svc.set(key, value, indexes={"i": ["*", "v", "k:x"][i % 3], "all": "1"})
        if self.alias != "in_memory":
            plain = caches[self.alias]
            for key in PLAIN_KEYS:
                plain.set(key, self.sentinel(f"plain:{key}"), 3600)
        provider = self.svc.provider
        if isinstance(provider, RedisProvider):
            kwargs = provider.connection.client.connection_pool.connection_kwargs
            self.redis = redis.Redis(host=kwargs["host"], port=kwargs["port"], db=kwargs["db"])
            for key in RAW_KEYS:
                self.raw_values[key.encode()] = self.sentinel(f"raw:{key}").encode()
                assert self.redis.set(key, self.raw_values[key.encode()], ex=3600, nx=True)
            plain_stored = [caches[self.alias].make_key(k) for k in PLAIN_KEYS]
            ours = list(self.redis.scan_iter(match=provider.layout.match(), count=1000))
            self.freq_keys = [*ours, *(k.encode() for k in plain_stored), *self.raw_values]
            for key in self.freq_keys:  # every canary starts with an access count of 0
                pttl = max(0, int(self.redis.pttl(key)))
                self.redis.restore(key, pttl, self.redis.dump(key), replace=True, frequency=0)

    def leaked(self, found: object) -> bool:
        """Whether a result holds a canary's value."""
        return f"CANARY:{self.token}" in repr(found)

    def touched(self, what: str) -> None:
        self.tally.add("canaries_touched")
        self.tally.note(f"{self.alias}: {what}")

    def check_present(self) -> None:
        """Every canary still there (on Redis without touching it: EXISTS does not count)."""
        if self.redis is not None:
            missing = [k for k in self.freq_keys if not self.redis.exists(k)]
            if missing:
                self.touched(f"deleted {missing[:3]}")
            return
        found = self.svc.get_many(list(self.values))
        if found != self.values:
            self.touched(f"canary namespace now {found!r:.200}")
        if self.alias != "in_memory":
            for key in PLAIN_KEYS:
                if caches[self.alias].get(key) != self.sentinel(f"plain:{key}"):
                    self.touched(f"plain key {key!r} gone or changed")

    def check_untouched(self) -> None:
        """At the end: no access counted on Redis, every value intact, indexes whole."""
        if self.redis is not None:
            counted = {k: self.redis.object("freq", k) for k in self.freq_keys}
            read = {k: n for k, n in counted.items() if n}
            if read:
                self.touched(f"accessed (OBJECT FREQ) {sorted(read.items())[:5]}")
            for key, value in self.raw_values.items():
                if self.redis.get(key) != value:
                    self.touched(f"raw key {key!r} changed")
        if self.svc.get_many(list(self.values)) != self.values:
            self.touched("canary namespace values changed")
        if sorted(self.svc.find("all", "1")) != sorted(self.values):
            self.touched("canary index changed")
        if self.alias != "in_memory":
            for key in PLAIN_KEYS:
                if caches[self.alias].get(key) != self.sentinel(f"plain:{key}"):
                    self.touched(f"plain key {key!r} gone or changed")

    def cleanup(self) -> None:
        self.svc.clear()
        if self.alias != "in_memory":
            caches[self.alias].delete_many(PLAIN_KEYS)
        if self.redis is not None:
            self.redis.delete(*RAW_KEYS)
            self.redis.close()


def valid_text(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def refuses_long(svc: CacheService, key: str) -> bool:
    provider = svc.provider
    if provider.max_key_length is None or provider.hash_long_keys:
        return False
    stored = provider.backend.make_key(keys.build_key(svc.namespace, keys.ENTRY, key))
    return len(stored.encode()) > provider.max_key_length


def command(*args: str) -> Any:
    out = io.StringIO()
    call_command("cache_namespaces", *args, stdout=out, stderr=io.StringIO())
    return json.loads(out.getvalue())


def exercise(
    alias: str,
    canaries: Canaries,
    tally: Tally,
    ns_name: str,
    entries: dict[str, Any],
    index_name: str,
    index_values: list[str],
    patterns: list[str],
    by_command: bool,
) -> None:
    """One draw: write it all, read it all back, list, delete; check canaries after."""
    tally.add("hostile_inputs")
    try:  # not make_service(): it would swap an empty name for a generated one
        if alias == "in_memory":
            svc = CacheService(ns_name, default_ttl=600, cache_type="in_memory")
        else:
            svc = CacheService(ns_name, default_ttl=600, cache=alias)
    except InvalidKey:
        assert not conf.is_valid_name(ns_name)
        return
    assert conf.is_valid_name(ns_name)
    assert ns_name != canaries.namespace
    written: dict[str, tuple[Any, str]] = {}
    try:
        for i, (key, value) in enumerate(entries.items()):
            filed = index_values[i % len(index_values)]
            tally.add("operations")
            try:
                assert svc.set(key, value, indexes={index_name: filed}) is True
            except InvalidKey:
                expected = (
                    not key
                    or not valid_text(key)
                    or not conf.is_valid_name(index_name)
                    or not valid_text(filed)
                    or refuses_long(svc, key)
                )
                assert expected, (key, index_name, filed)
                continue
            except ValueError as exc:  # the value: pymemcache stores a str as UTF-8 text
                refused: str | None = str(exc)
            else:
                refused = None
            if refused is not None:
                assert svc.namespace in refused
                assert alias == "memcached", (alias, value, refused)
                assert isinstance(value, str)
                assert not valid_text(value)
                continue
            assert key
            assert valid_text(key)
            assert valid_text(filed)
            assert conf.is_valid_name(index_name)
            written[key] = (value, filed)
        check_draw(svc, canaries, tally, written, index_name, patterns, by_command)
    finally:
        svc.clear()
    tally.add("operations")
    if written:
        assert svc.get_many(list(written)) == {}
    canaries.check_present()


def check_draw(
    svc: CacheService,
    canaries: Canaries,
    tally: Tally,
    written: dict[str, tuple[Any, str]],
    index_name: str,
    patterns: list[str],
    by_command: bool,
) -> None:
    results: list[Any] = []
    for key, (value, _) in written.items():
        got = svc.get(key)
        results.append(got)
        assert got == value, (key, got, value)
    many = svc.get_many([*written, *CANARY_KEYS, *PLAIN_KEYS])
    results.append(many)
    assert many == {k: v for k, (v, _) in written.items()}
    by_value: dict[str, set[str]] = {}
    for key, (_, filed) in written.items():
        by_value.setdefault(filed, set()).add(key)
    for filed, expected in by_value.items():
        found = svc.get_by_index(index_name, filed)
        results.append(found)
        assert set(found) == expected, (filed, sorted(found), sorted(expected))
    tally.add("operations", len(written) + 1 + len(by_value))
    for pattern in patterns:
        tally.add("operations")
        if not valid_text(pattern):
            with pytest.raises(InvalidKey, match="pattern"):
                svc.keys(pattern)
            continue
        if not svc.capabilities.list_keys:
            with pytest.raises(NotSupported):
                svc.keys(pattern)
            continue
        listed = svc.keys(pattern)
        results.append(listed)
        assert sorted(listed) == sorted(k for k in written if fnmatch.fnmatchcase(k, pattern))
    if by_command and written and svc.cache_alias in caches.settings:
        results += through_the_command(svc, written, index_name, patterns)
    if canaries.leaked(results):
        canaries.touched(f"a result of {svc.namespace!r} held a canary value")
    if written:  # take one out each way: pop, delete_by_index, delete
        first, (value, _) = next(iter(written.items()))
        tally.add("operations", 3)
        assert svc.pop(first) == value
        assert svc.get(first) is None
        rest = {k: v for k, v in written.items() if k != first}
        if rest:
            filed = next(iter(rest.values()))[1]
            doomed = {k for k, (_, f) in rest.items() if f == filed}
            assert svc.delete_by_index(index_name, filed) == len(doomed)
            assert svc.get_many(list(doomed)) == {}
        for key in set(rest) - {k for k, (_, f) in rest.items() if f == filed} if rest else ():
            assert svc.delete(key) is True


def through_the_command(
    svc: CacheService, written: dict[str, tuple[Any, str]], index_name: str, patterns: list[str]
) -> list[Any]:
    """The management command sees exactly what the API sees, and nothing of the canaries."""
    ns, alias, out = svc.namespace, svc.cache_alias, []
    base = ["--format", "json", "--cache", alias]
    if svc.capabilities.list_keys:
        for pattern in [p for p in patterns if valid_text(p)][:1]:
            shown = command("keys", *base, "--limit", "0", f"--pattern={pattern}", "--", ns)
            out.append(shown)
            assert sorted(shown["keys"]) == sorted(svc.keys(pattern))
    key, (_, filed) = next(iter(written.items()))
    try:
        found = command("find", *base, "--", ns, index_name, filed)
    except CommandError:  # an index value the command line cannot carry (NUL): the API did
        assert "\x00" in filed or "\x00" in index_name
    else:
        out.append(found)
        assert sorted(found["keys"]) == sorted(svc.find(index_name, filed))
    try:
        out.append(command("get", *base, "--", ns, key))
    except CommandError:
        assert "\x00" in key
    return out


@pytest.mark.parametrize(("alias", "profile"), cases())
def test_hostile_names_keys_and_values(
    alias: str,
    profile: Profile,
    stores: dict[str, Any],
    caches_on_lfu: dict[str, Any],
    request: pytest.FixtureRequest,
) -> None:
    if alias == "memcached" and alias not in stores:
        pytest.skip("memcached is not installed (apt-get install memcached)")
    tally = Tally()
    canaries = Canaries(alias, tally)
    canaries.seed()
    run_id = secrets.token_hex(3)
    names = st.one_of(
        VALID_NAME.map(lambda name: f"h{run_id}{name}"[:64]),
        st.sampled_from(canaries.near_misses),
        TEXT,
    )
    draws = {"n": 0}

    @settings(
        max_examples=profile.examples,
        deadline=None,
        derandomize=not profile.full,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(
        ns_name=names,
        entries=st.dictionaries(KEY, VALUE, min_size=1, max_size=5),
        index_name=INDEX_NAME,
        index_values=st.lists(TEXT, min_size=1, max_size=3),
        patterns=st.lists(PATTERN, max_size=3),
    )
    def draw(
        ns_name: str,
        entries: dict[str, Any],
        index_name: str,
        index_values: list[str],
        patterns: list[str],
    ) -> None:
        draws["n"] += 1
        exercise(
            alias,
            canaries,
            tally,
            ns_name,
            entries,
            index_name,
            index_values,
            patterns,
            by_command=draws["n"] % 3 == 0,
        )

    try:
        draw()
        canaries.check_untouched()
    finally:
        canaries.cleanup()
    record(request.node.nodeid, tally)
    assert not tally.bad(), (tally.bad(), tally.notes)
    assert tally["hostile_inputs"] >= profile.examples


# -- memcached boundaries -----------------------------------------------------------------------


@pytest.fixture
def memcached(stores: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if "memcached" not in stores:
        pytest.skip("memcached is not installed (apt-get install memcached)")
    location = stores["memcached"]["LOCATION"]
    backend = "django.core.cache.backends.memcached.PyMemcacheCache"
    extra = {
        "mc_ascii": {"BACKEND": backend, "LOCATION": location, "KEY_PREFIX": "mc"},
        "mc_wide": {"BACKEND": backend, "LOCATION": location, "KEY_PREFIX": "ü" * 20},
    }
    with override_settings(CACHES={**stores, **extra}):
        yield extra


def stored_bytes(svc: CacheService, key: str) -> int:
    return len(svc.provider.backend.make_key(svc.make_key(key)).encode())


@pytest.mark.parametrize("alias", ["mc_ascii", "mc_wide"])
def test_memcached_keys_around_250_bytes(memcached: dict[str, Any], alias: str) -> None:
    """Keys whose stored form is 249, 250, 251... bytes: kept or hashed, never refused."""
    svc = CacheService(f"edge{secrets.token_hex(3)}", default_ttl=60, cache=alias)
    plain_bytes = stored_bytes(svc, "a")  # prefix + namespace + one character
    tried: dict[str, int] = {}
    for target in range(240, 262):
        for fill in ("a", "é", "日", "🙂", ":", "*"):
            unit = len(keys.escape(fill))  # bytes one character takes once escaped
            n = max(1, (target - plain_bytes + 1) // unit)
            for key in (fill * n, fill * n + "x", fill * (n + 1)):
                if key in tried:
                    continue
                assert svc.set(key, f"value of {key}", indexes={"long": key})
                tried[key] = stored_bytes(svc, key)
                assert tried[key] <= 250
    sizes = set(tried.values())
    assert 250 in sizes or 249 in sizes  # the boundary itself was reached unhashed
    unhashed = {key: plain_bytes - 1 + len(keys.escape(key)) for key in tried}
    assert any(size > 250 for size in unhashed.values())  # and crossed: those were hashed
    for key in tried:
        assert svc.get(key) == f"value of {key}"
        assert svc.find("long", key) == [key]
    assert len({svc.make_key(key) for key in tried}) == len(tried)  # no two collide
    svc.clear()


def test_memcached_values_over_1mb_fail_cleanly(
    memcached: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """``set`` of a value over the item size limit returns False and logs its size;
    ``set_many`` returns that key as failed and stores the others (Django's contract)."""
    for quiet in (False, True):
        svc = CacheService(
            f"huge{secrets.token_hex(3)}", default_ttl=60, cache="mc_ascii", fail_silently=quiet
        )
        near = "n" * (1024 * 1024 - 4096)
        assert svc.set("near", near, indexes={"size": "big"})
        assert svc.get("near") == near
        assert svc.set("k", "old", indexes={"size": "small"})
        too_big = "x" * (1024 * 1024 + 1)
        caplog.clear()
        with caplog.at_level("WARNING", logger="agenthub_cache"):
            assert svc.set("k", too_big, indexes={"size": "huge"}) is False
        assert f"{svc.namespace!r}" in caplog.text
        # the size stored, in bytes (the str pickled: a little over its 1,048,577 characters)
        assert re.search(r"refused the value of 'k' \(1,048,\d{3} bytes", caplog.text)
        refused = rf"{svc.namespace}.*refused the value"
        with pytest.raises(ValueError, match=refused):
            svc.add("other", too_big)
        # computed, returned, not stored (the same refusal as set's, logged)
        assert svc.get_or_set("computed", lambda: too_big) == too_big  # noqa: B023
        assert svc.get("k") in ("old", None)  # memcached drops the old item; never a part
        assert svc.find("size", "huge") == []
        assert svc.find("size", "small") == (["k"] if svc.get("k") == "old" else [])
        assert svc.get("other") is None
        assert svc.get("computed") is None
        assert svc.set_many({"a": 1, "b": too_big, "c": 3}) == ["b"]
        assert svc.get_many(["a", "b", "c"]) == {"a": 1, "c": 3}  # the others are stored
        assert svc.get("near") == near  # the connection is still in step
        assert svc.find("size", "big") == ["near"]
        assert svc.set("k", "new")
        assert svc.get("k") == "new"
        svc.clear()
