from __future__ import annotations

import importlib.util

from django.apps import AppConfig
from django.core import checks


class AgentHubCacheConfig(AppConfig):
    name = "agenthub_cache"
    verbose_name = "AgentHub cache namespaces"

    def ready(self) -> None:
        from agenthub_cache.checks import check_redis_eviction, check_settings
        from agenthub_cache.checks_cluster import check_redis_cluster

        checks.register(check_settings, checks.Tags.caches)
        # Asks the servers over the network: a deployment check, not one for every command.
        checks.register(check_redis_eviction, checks.Tags.caches, deploy=True)
        checks.register(check_redis_cluster, checks.Tags.caches, deploy=True)
        # Metrics for Prometheus only where prometheus_client is installed: no import otherwise.
        if importlib.util.find_spec("prometheus_client") is not None:
            from agenthub_cache.prometheus import register

            register()
