"""FileBasedCache: generation flush (it cannot list), TTL read from each file's header."""

from __future__ import annotations

import pickle
import time
from collections.abc import Mapping
from typing import Any, ClassVar, cast

from agenthub_cache.providers.base import Capabilities, Flush
from agenthub_cache.providers.generic import GenericProvider
from agenthub_cache.providers.pickling import check_picklable


class FileProvider(GenericProvider):
    capabilities: ClassVar[Capabilities] = Capabilities(flush=Flush.GENERATION, ttl=True)

    def set_many(self, mapping: Mapping[str, Any], timeout: float | None) -> list[str]:
        check_picklable(mapping.values())  # a rejected batch writes nothing
        return super().set_many(mapping, timeout)

    def stored_ttl(self, stored: str) -> float | None:
        """FileBasedCache writes the expiry (epoch seconds or None) as the file's first pickle."""
        try:
            with open(cast(Any, self.backend)._key_to_file(stored), "rb") as f:
                expires: float | None = pickle.load(f)
        except (FileNotFoundError, EOFError, pickle.UnpicklingError):
            return 0.0
        return None if expires is None else max(0.0, expires - time.time())
