"""The errors the app raises; all importable from ``agenthub_cache``."""

from __future__ import annotations


class CacheError(Exception):
    """Base class of every error this app raises on purpose."""


class UnknownNamespace(CacheError, KeyError):
    """``namespaces[name]`` for a name the settings do not declare."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class NotSupported(CacheError):
    """The backend behind a namespace cannot do this (listing on memcached, say)."""


class CacheUnavailable(CacheError):
    """The backend is unreachable or timed out; ``__cause__`` holds the original error."""


class CacheRefused(CacheError):
    """The backend answered but refused the command (out of memory, no permission, a wrong
    password); never silenced by ``FAIL_SILENTLY``. ``__cause__`` holds the store's error."""


class InvalidKey(CacheError, ValueError):
    """A key, index name or argument the namespace cannot accept."""


class LockError(CacheError):
    """A lock could not be acquired in time, or was released by someone who does not hold it."""
