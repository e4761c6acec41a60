"""Redis: the provider and the parts it is built from, one module a job.

``layout`` names the keys, ``scripts`` holds the Lua, ``calls`` builds each script call,
``steps`` the sans-IO multi-round-trip logic and ``driver`` runs it (sync and async),
``connections`` the sync and async clients, ``pools`` the ``redis.asyncio`` pools (blocking,
Sentinel) built from the sync settings, ``codec`` the backend's serializer and compressor,
``lock`` the distributed lock and ``provider`` puts them together.

On a Redis Cluster (``agenthub_cache.backends.RedisClusterCache``), ``cluster_settings`` reads
an alias's settings into a spec, ``cluster_client`` holds the cluster's clients, ``cluster``
the provider (the same layout, scripts and steps, under hash tags), and ``fanout`` drives the
steps of several tags on one node in lockstep.
"""

from agenthub_cache.providers.redis.provider import RedisProvider

__all__ = ["RedisProvider"]
