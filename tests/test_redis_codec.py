"""The Redis provider's fast paths give exactly what the slow, reference paths give.

* values: the inlined codecs for the default serializers produce and accept the same bytes
  as the backends' own ``encode``/``decode``; configured serializers and compressors are
  used as they are (round trip through ``caches[alias]`` both ways);
* keys: ``keys.escape_many`` is ``escape`` of each part; ``keys.unescape`` (its ASCII fast
  path) and ``keys.unescape_many`` invert ``escape`` exactly as ``urllib.parse.unquote`` does.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import pytest
from django.core.cache import caches
from django.test.utils import override_settings
from hypothesis import given
from hypothesis import strategies as st

from agenthub_cache import CacheService, keys
from agenthub_cache.providers.redis.codec import batch_decoder, codec_for
from agenthub_cache.providers.redis.layout import escape
from tests import servers


class Colour(enum.IntEnum):
    RED = 1


class MyInt(int):
    pass


class Shade(enum.Enum):
    DARK = "dark"


VALUES: list[Any] = [
    0, 1, -7, 2**70, True, False, Colour.RED, MyInt(5), Shade.DARK, 1.5, "", "text", b"bytes", None,
    [1, "a"], {"k": (1, 2)}, {1, 2}, "x" * 5000,
]  # fmt: skip


def test_default_django_redis_codec_leaves_only_ints_to_the_clients_encode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A value that is no int is pickled by the serializer directly (django-redis's encode
    adds only its int checks and the identity compression); ints, bools and enums still go
    through the client's own rule, which differs between django-redis versions."""
    backend: Any = caches["redis"]
    seen: list[Any] = []
    own = backend.client.encode
    monkeypatch.setattr(backend.client, "encode", lambda value: seen.append(value) or own(value))
    encode, _ = codec_for(backend)
    assert encode("text") == own("text")
    assert encode({"k": 1}) == own({"k": 1})
    assert seen == []
    for value in (5, True, Colour.RED):
        assert encode(value) == own(value)
    assert seen == [5, True, Colour.RED]


@pytest.mark.parametrize("alias", ["redis", "redis_django"])
def test_default_codecs_match_the_backends_own(alias: str) -> None:
    backend: Any = caches[alias]
    encode, decode = codec_for(backend)
    if alias == "redis":
        reference_encode, reference_decode = backend.client.encode, backend.client.decode
    else:
        serializer = backend._cache._serializer
        reference_encode, reference_decode = serializer.dumps, serializer.loads
    for value in VALUES:
        stored = encode(value)
        assert stored == reference_encode(value), value
        as_bytes = stored if isinstance(stored, bytes) else str(stored).encode()
        assert decode(as_bytes) == reference_decode(as_bytes)
        assert type(decode(as_bytes)) is type(reference_decode(as_bytes))


@pytest.mark.parametrize("alias", ["redis", "redis_django"])
def test_batch_decoding_gives_what_decoding_each_value_gives(alias: str) -> None:
    """``batch_decoder``: a batch of pickles only takes the mapped ``pickle.loads``; a batch
    holding a plain int (or an empty value, unreadable either way) decodes value by value."""
    encode, decode = codec_for(caches[alias])
    decode_all = batch_decoder(decode)
    stored = [v if isinstance(v, bytes) else str(v).encode() for v in map(encode, VALUES)]
    pickles = [v for v in stored if v[:1] == b"\x80"]
    assert 0 < len(pickles) < len(stored)  # both kinds of batch below
    for batch in (stored, pickles, stored[::-1], []):
        assert list(decode_all(batch)) == [decode(value) for value in batch]
        assert [type(v) for v in decode_all(batch)] == [type(decode(value)) for value in batch]
    with pytest.raises(EOFError):
        decode(b"")
    with pytest.raises(EOFError):
        list(decode_all([*pickles, b""]))


@pytest.mark.parametrize("alias", ["redis", "redis_django"])
def test_get_many_decodes_a_mixed_batch_in_key_order(alias: str) -> None:
    svc = CacheService("codec-batch", default_ttl=60, cache=alias)
    encode, _ = codec_for(caches[alias])
    # Values every supported redis-py sends as encoded: before 8, redis-py hands an int subclass
    # (IntEnum, MyInt) to hiredis as it is, which refuses it, for the backend's own set() too.
    values = {
        f"k{i}": value
        for i, value in enumerate(VALUES)
        if value is not None and type(encode(value)) in (bytes, str, int, float)
    }
    assert len(values) >= len(VALUES) - 4
    try:
        assert svc.set_many(values) == []
        asked = ["missing-0", *reversed(values), "missing-1"]
        found = svc.get_many(asked)
        assert list(found) == list(reversed(values))
        assert found == values
        assert found == {key: svc.get(key) for key in reversed(values)}
        assert [type(v) for v in found.values()] == [type(svc.get(k)) for k in reversed(values)]
    finally:
        svc.clear()


class JSONSerializer:
    """A serializer for Django's RedisCache ``OPTIONS["serializer"]``."""

    def dumps(self, value: Any) -> bytes:
        return json.dumps(value).encode()

    def loads(self, data: bytes) -> Any:
        return json.loads(data)


@pytest.fixture
def configured_codecs(
    redis_server: servers.Server, stores: dict[str, Any]
) -> Iterator[dict[str, Any]]:
    configured = {
        **stores,
        "json_zlib": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"{redis_server.url}/3",
            "KEY_PREFIX": "jz",
            "OPTIONS": {
                "SERIALIZER": "django_redis.serializers.json.JSONSerializer",
                "COMPRESSOR": "django_redis.compressors.zlib.ZlibCompressor",
            },
        },
        "json_django": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"{redis_server.url}/3",
            "KEY_PREFIX": "jd",
            "OPTIONS": {"serializer": f"{__name__}.JSONSerializer"},
        },
    }
    with override_settings(CACHES=configured):
        yield configured


@pytest.mark.parametrize("alias", ["json_zlib", "json_django"])
def test_configured_serializers_and_compressors_are_used(
    configured_codecs: dict[str, Any], alias: str
) -> None:
    svc = CacheService("codec", default_ttl=60, cache=alias)
    try:
        document = {"text": "é" * 2000, "n": [1, 2.5, None]}
        svc.set("doc", document, indexes={"kind": "doc"})
        assert caches[alias].get(svc.make_key("doc")) == document
        caches[alias].set(svc.make_key("back"), {"from": "django"})
        assert svc.get("back") == {"from": "django"}
        assert svc.get_by_index("kind", "doc") == {"doc": document}
        assert svc.incr("n") == 1
        assert svc.get("n") == 1
        assert caches[alias].get(svc.make_key("n")) == 1
    finally:
        svc.clear()


@given(st.text())
def test_escape_is_keys_escape(part: str) -> None:
    escaped = escape(part)
    assert escaped == keys.escape(part)
    assert keys.unescape(escaped) == unquote(escaped) == part


@given(st.lists(st.text(), max_size=20))
def test_unescape_many_is_unescape_of_each(parts: list[str]) -> None:
    assert keys.unescape_many([escape(p).encode() for p in parts]) == parts


@given(st.lists(st.text(alphabet=st.sampled_from("a:%0A\n\x00~ü*"), max_size=6), max_size=20))
def test_escape_many_is_escape_of_each(parts: list[str]) -> None:
    """Exact whatever the parts hold (``%``, ``0A``, line breaks and non-ASCII: the last two
    take the part-by-part path)."""
    assert keys.escape_many(parts) == [keys.escape(p).encode() for p in parts]


@given(st.lists(st.text(alphabet=st.characters(max_codepoint=127, exclude_characters="\n"))))
def test_escape_many_of_ascii_parts_is_escape_of_each(parts: list[str]) -> None:
    assert keys.escape_many(parts) == [keys.escape(p).encode() for p in parts]


def test_escape_many_escapes_percent_first() -> None:
    parts = ["a:1", "%3A", "3A%", "b c", ""]
    assert keys.escape_many(parts) == [b"a%3A1", b"%253A", b"3A%25", b"b%20c", b""]
