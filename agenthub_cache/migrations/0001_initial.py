# The unmanaged Namespace model: no table, only its content type and the permissions
# agenthub_cache.view_namespace and agenthub_cache.flush_namespace.
from __future__ import annotations

from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="Namespace",
            fields=[("name", models.CharField(max_length=64, primary_key=True, serialize=False))],
            options={
                "verbose_name": "namespace",
                "verbose_name_plural": "namespaces",
                "permissions": [
                    ("flush_namespace", "Can delete entries of, prune and flush a namespace")
                ],
                "managed": False,
                "default_permissions": ("view",),
            },
        ),
    ]
