from __future__ import annotations

from django.apps import AppConfig


class SignupsConfig(AppConfig):
    name = "example_project.signups"
    label = "signups"
    verbose_name = "Signups (agenthub_cache example)"
