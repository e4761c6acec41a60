"""WSGI entry point: ``gunicorn example_project.wsgi`` from the repository root."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")

from example_project.bootstrap import prepare  # needs the settings module set

prepare()
application = get_wsgi_application()
