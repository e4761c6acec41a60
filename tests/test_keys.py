"""The key builder is injective, whatever the parts hold."""

from __future__ import annotations

import string

from hypothesis import given
from hypothesis import strategies as st

from agenthub_cache import keys

HOSTILE = st.text(alphabet=st.sampled_from([*":*?[]\\{}% \t\n@", "ü", "日", "🙂", "a", "b"]))
PART = st.one_of(HOSTILE, st.text())
KINDS = st.sampled_from([keys.ENTRY, keys.META, keys.INDEX, keys.LOCK])


@given(
    st.tuples(PART, KINDS, st.lists(PART, min_size=1, max_size=3)),
    st.tuples(PART, KINDS, st.lists(PART, min_size=1, max_size=3)),
)
def test_distinct_inputs_build_distinct_keys(
    a: tuple[str, str, list[str]], b: tuple[str, str, list[str]]
) -> None:
    key_a = keys.build_key(a[0], a[1], *a[2])
    key_b = keys.build_key(b[0], b[1], *b[2])
    assert (key_a == key_b) == (a == b)


@given(PART, PART)
def test_namespace_prefix_never_prefixes_another_namespace(ns: str, other: str) -> None:
    if ns != other:
        assert not keys.build_key(other, keys.ENTRY, "x").startswith(keys.namespace_prefix(ns))


@given(PART)
def test_parts_hold_no_separator_glob_or_space(part: str) -> None:
    escaped = keys.escape(part)
    assert set(escaped) <= set(string.ascii_letters + string.digits + "_.-~%")
    assert keys.unescape(escaped) == part


@given(PART, PART)
def test_entry_keys_round_trip_from_stored(ns: str, key: str) -> None:
    stored = keys.build_key(ns, keys.ENTRY, key)
    suffix = stored[len(keys.namespace_prefix(ns)) :]
    assert keys.entry_key_from_stored(suffix) == (key or None)


@given(PART, PART, st.text(min_size=1))
def test_hashed_keys_are_short_and_distinct_from_plain_ones(ns: str, key: str, other: str) -> None:
    hashed = keys.hashed_key(ns, keys.ENTRY, key)
    assert len(hashed) <= len(keys.namespace_prefix(ns)) + 70
    assert hashed != keys.build_key(ns, keys.ENTRY, key)
    if other != key:
        assert hashed != keys.hashed_key(ns, keys.ENTRY, other)
    assert hashed != keys.hashed_key(ns, keys.INDEX, key)


def test_generation_is_part_of_the_scope() -> None:
    assert keys.build_key("ns", keys.ENTRY, "k", generation="1") != keys.build_key(
        "ns", keys.ENTRY, "k"
    )
