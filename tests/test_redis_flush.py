"""The Redis flush sends a namespace's plain entries to the server as a raw SCAN + UNLINK does.

Entry keys are UNLINKed as listed, no script and nothing sent but the keys; a batch is known
to hold only entry keys by a few passes over it joined (``KeyLayout.all_entries``), which must
say what ``kind_of`` says key by key, or the flush could delete a key the app never wrote.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest

from agenthub_cache import CacheService, keys
from agenthub_cache.providers.redis import RedisProvider
from agenthub_cache.providers.redis.driver import Batch, Cmd, Lua, Step, Steps
from agenthub_cache.providers.redis.flush import clear as clear_steps
from agenthub_cache.providers.redis.layout import KeyLayout
from tests.conftest import make_service
from tests.reliability_workload import raw_client

pytestmark = pytest.mark.filterwarnings("error")


@pytest.fixture
def svc(redis_backend: str) -> Iterator[CacheService]:
    service = make_service(redis_backend, default_ttl=600)
    yield service
    service.clear()


def layout_of(svc: CacheService) -> KeyLayout:
    provider = svc.provider
    assert isinstance(provider, RedisProvider)
    return provider.layout


def recorded(steps: Steps[int], seen: list[Step]) -> Steps[int]:
    """``steps``, each one it yields noted in ``seen``."""
    try:
        step = next(steps)
        while True:
            seen.append(step)
            try:
                reply = yield step
            except BaseException as exc:
                step = steps.throw(exc)
            else:
                step = steps.send(reply)
    except StopIteration as done:
        result: int = done.value
        return result


def commands(seen: list[Step]) -> list[Any]:
    """The commands (a script by its name) of the steps seen, batches opened."""
    flat: list[Any] = []
    for step in seen:
        for call in step.calls if isinstance(step, Batch) else [step]:
            flat.append(call.script if isinstance(call, Lua) else call.args[0])  # type: ignore[union-attr]
    return flat


def test_a_namespace_of_plain_entries_is_flushed_by_scan_and_unlink_alone(
    svc: CacheService,
) -> None:
    svc.set_many({f"k{n}": n for n in range(3_000)})
    seen: list[Step] = []
    provider: Any = svc.provider
    assert provider._drive(recorded(clear_steps(layout_of(svc), None), seen)) == 3_000
    assert set(commands(seen)) == {"SCAN", "UNLINK"}
    unlinked = [
        key
        for step in seen
        for call in (step.calls if isinstance(step, Batch) else [step])
        if isinstance(call, Cmd) and call.args[0] == "UNLINK"
        for key in call.args[1:]
    ]
    assert len(unlinked) == 3_000  # each entry key once, as listed: no meta key beside it
    assert svc.count() == 0


def test_filed_entries_still_go_through_the_script_that_unfiles_them(
    svc: CacheService,
) -> None:
    svc.set_many({f"k{n}": n for n in range(500)})
    for n in range(50):
        svc.set(f"i{n}", n, indexes={"g": str(n % 2)})
    seen: list[Step] = []
    provider: Any = svc.provider
    assert provider._drive(recorded(clear_steps(layout_of(svc), None), seen)) == 550
    assert "delete" in commands(seen)  # the metas found
    assert svc.find("g", "0") == []
    assert svc.count() == 0


ENTRY_LIKE = [  # what follows ``<prefix>``: not one of the app's entry keys
    "k",
    "k:",
    "k:a:b",
    "k:a b",
    "k:a*",
    "k:%",
    "k:%4",
    "k:%4g",
    "k:%4a",
    "k:%%41",
    "k:a%",
    "k:\xfc",
    "K:a",
    "kk:a",
    "m:a",
    "i:a:b",
    "l:a",
    "l",
    "z:1",
]


def test_all_entries_says_what_kind_of_says_key_by_key(svc: CacheService) -> None:
    layout = layout_of(svc)
    prefix = layout.listed_prefix()
    entries = [layout.entry(keys.escape(k)).encode() for k in ("a", "b c", "ü%", "x:y", "~")]
    assert layout.all_entries(entries)
    assert not layout.all_entries([])
    for suffix in ENTRY_LIKE:
        for where in (0, 2, len(entries)):
            batch = [*entries]
            batch.insert(where, (prefix + suffix).encode())
            assert not layout.all_entries(batch), suffix
    # A key that holds a line break between two entry keys is one key, not two.
    assert not layout.all_entries([entries[0], entries[1] + b"\n" + entries[2]])
    assert not layout.all_entries([b"other:" + entries[0]])
    rng = random.Random(7)
    alphabet = "ab%4AF:\n z"
    for _ in range(3_000):
        batch = [
            (prefix + "k:" + "".join(rng.choices(alphabet, k=rng.randint(0, 5)))).encode()
            for _ in range(rng.randint(1, 4))
        ]
        expected = all(layout.kind_of(key) == b"k" for key in batch)
        assert layout.all_entries(batch) == expected, batch


def test_entry_like_keys_of_others_survive_a_flush_of_plain_entries(svc: CacheService) -> None:
    layout = layout_of(svc)
    prefix = layout.listed_prefix()
    foreign = [f"{prefix}{suffix}" for suffix in ENTRY_LIKE if suffix[:1] in "kK"]
    foreign.append(f"{layout.entry('a')}\n{layout.entry('b')}")
    svc.set_many({f"k{n}": n for n in range(2_000)} | {"a": 1, "b": 2})
    with raw_client(svc) as client:
        client.mset(dict.fromkeys(foreign, b"theirs"))
        try:
            assert svc.clear() == 2_002
            assert client.mget(foreign) == [b"theirs"] * len(foreign)
        finally:
            client.delete(*foreign)
