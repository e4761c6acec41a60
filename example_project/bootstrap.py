"""Create the example site's database and cache table on first use; idempotent and quick.

The default cache of the site is Django's ``DatabaseCache`` on SQLite, so the table must exist
before the first request. ``manage.py``, ``wsgi.py`` and ``asgi.py`` call this before anything
else; on Redis or memcached (``AGENTHUB_CACHE_BACKEND``) ``createcachetable`` has nothing to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

#: Commands that must not touch the disk, or that create the tables themselves.
SKIP = {"help", "--help", "-h", "version", "--version", "migrate", "createcachetable"}


def prepare() -> None:
    """Set Django up, then create the SQLite file, the migrated tables and the cache table."""
    import django
    from django.conf import settings
    from django.core.management import call_command

    django.setup()
    for database in settings.DATABASES.values():
        if database["ENGINE"] == "django.db.backends.sqlite3":
            Path(str(database["NAME"])).parent.mkdir(parents=True, exist_ok=True)
    call_command("migrate", run_syncdb=True, interactive=False, verbosity=0)
    call_command("createcachetable", verbosity=0)


def prepare_for(argv: Sequence[str]) -> None:
    """``prepare()`` unless the command is help, version, or one that makes the tables itself."""
    if len(argv) > 1 and argv[1] not in SKIP:
        prepare()
