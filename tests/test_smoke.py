from __future__ import annotations

from agenthub_cache import CacheService


def test_set_find_clear(service: CacheService) -> None:
    assert service.set("s1", {"a": 1}, indexes={"email": "a@b.c"})
    assert service.find("email", "a@b.c") == ["s1"]
    assert service.get("s1") == {"a": 1}
