"""ASGI entry point: ``uvicorn example_project.asgi:application`` from the repository root."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")

from example_project.bootstrap import prepare  # needs the settings module set

prepare()
application = get_asgi_application()
