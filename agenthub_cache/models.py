"""``Namespace``: an unmanaged model without a table, so that the admin lists namespaces.

It exists for the admin's URL names (``admin:agenthub_cache_namespace_changelist``), its
content type and its two permissions; rows are never read from or written to a database.
"""

from __future__ import annotations

from django.db import models


class Namespace(models.Model):
    name = models.CharField(max_length=64, primary_key=True)

    class Meta:
        managed = False
        default_permissions = ("view",)
        permissions = [("flush_namespace", "Can delete entries of, prune and flush a namespace")]
        verbose_name = "namespace"
        verbose_name_plural = "namespaces"

    def __str__(self) -> str:
        return self.name
