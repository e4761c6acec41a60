#!/usr/bin/env python
"""The example site's ``manage.py``: ``python example_project/manage.py runserver`` from the repo root.

Before a command runs, the site's SQLite database and cache table are created if they are
missing (see ``bootstrap.py``), so a fresh clone needs no set-up step.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main() -> None:
    # Import the site as the package ``example_project`` from the repository root, and keep its
    # own folder off sys.path so that ``settings`` or ``signups`` never import twice under two names.
    sys.path[0] = str(Path(__file__).resolve().parent.parent)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")

    from django.core.management import execute_from_command_line

    from example_project.bootstrap import prepare_for

    prepare_for(sys.argv)
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
