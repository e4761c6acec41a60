"""Run Django's own cache test suite against ``NamespaceCache``: ``python -m tests.django_cache_suite``.

Django's wheel ships no tests, so this downloads the sdist of the installed Django version
(``pip download --no-binary :all: --no-deps django==X.Y.Z``, kept in ``--cache-dir``), takes its
``tests/cache`` package, and runs the backend test classes of ``tests/django_cache_classes.py``
(Django's ``LocMemCacheTests``, ``DBCacheTests``, ``DBCacheWithTimeZoneTests`` and
``RedisCacheTests`` (twice: django-redis and ``django.core.cache.backends.redis.RedisCache`` as
the store) with every alias a ``NamespaceCache``) on a private redis-server started on a free
loopback port. Tests listed in
``tests/django_cache_expected.py`` are expected failures or skips, each with its reason.

Exit status 0 when every other test passes (and no expected failure passed). Prints the counts
per class, as quoted in the README.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import django

DEFAULT_CACHE_DIR = Path.home() / ".cache" / "agenthub-cache" / "django-sdist"


def django_sdist(cache_dir: Path) -> Path:
    """The sdist of the installed Django, downloaded once into ``cache_dir``."""
    version = django.__version__
    cache_dir.mkdir(parents=True, exist_ok=True)
    found = sorted(cache_dir.glob(f"[dD]jango-{version}.tar.gz"))
    if not found:
        subprocess.run(
            [
                *(sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps"),
                *("--dest", str(cache_dir), f"django=={version}"),
            ],
            check=True,
        )
        found = sorted(cache_dir.glob(f"[dD]jango-{version}.tar.gz"))
    if not found:
        raise SystemExit(f"pip download gave no Django-{version}.tar.gz in {cache_dir}")
    return found[0]


def extract_cache_tests(sdist: Path, into: Path) -> None:
    """``tests/cache/`` of the sdist as the package ``into/cache``."""
    with tarfile.open(sdist) as archive:
        members = [m for m in archive.getmembers() if "/tests/cache/" in m.name and m.isfile()]
        if not members:
            raise SystemExit(f"{sdist} has no tests/cache/")
        for member in members:
            target = into / "cache" / member.name.split("/tests/cache/", 1)[1]
            target.parent.mkdir(parents=True, exist_ok=True)
            source = archive.extractfile(member)
            assert source is not None
            target.write_bytes(source.read())


def configure(workdir: Path) -> None:
    from django.conf import settings

    settings.configure(
        SECRET_KEY="agenthub-cache-django-suite",
        USE_TZ=False,
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "agenthub_cache",
            "cache",
        ],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": str(workdir / "suite.sqlite3"),
                "TEST": {"NAME": str(workdir / "test-suite.sqlite3")},
            }
        },
        CACHES={
            "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
            "store": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        },
        AGENTHUB_CACHE={"CACHE": "store", "NAMESPACES": {"django-suite": {"TTL": 300}}},
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        # Django's suite runs with these (tests/runtests.py); the cache tests rely on none else.
        SILENCED_SYSTEM_CHECKS=["agenthub_cache.W002"],
    )
    django.setup()


def run(verbosity: int) -> int:
    from django.test.runner import DiscoverRunner

    from tests import django_cache_classes

    class Runner(DiscoverRunner):
        result: Any = None

        def run_suite(self, suite: Any, **kwargs: Any) -> Any:
            self.result = super().run_suite(suite, **kwargs)
            return self.result

    rows = []
    for cls in django_cache_classes.CLASSES:
        runner = Runner(verbosity=verbosity, interactive=False)
        runner.run_tests([f"{cls.__module__}.{cls.__name__}"])
        result = runner.result
        failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
        skipped = len(result.skipped)
        xfail = len(result.expectedFailures)
        passed = result.testsRun - failed - skipped - xfail
        rows.append((cls.__name__, result.testsRun, passed, xfail, skipped, failed))
    print("\nDjango", django.__version__, "cache tests against NamespaceCache:")
    print(f"{'class':<34} {'run':>4} {'passed':>7} {'xfail':>6} {'skipped':>8} {'failed':>7}")
    for row in rows:
        print(f"{row[0]:<34} {row[1]:>4} {row[2]:>7} {row[3]:>6} {row[4]:>8} {row[5]:>7}")
    return 1 if any(row[5] for row in rows) else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR)
    parser.add_argument("-v", "--verbosity", type=int, default=1)
    args = parser.parse_args(argv)
    sdist = django_sdist(args.cache_dir)
    workdir = Path(tempfile.mkdtemp(prefix="agenthub-cache-django-suite-"))
    try:
        extract_cache_tests(sdist, workdir)
        sys.path.insert(0, str(workdir))
        from tests import servers

        redis = servers.redis_server().start()
        try:
            os.environ["AGENTHUB_CACHE_SUITE_REDIS_URL"] = redis.url
            configure(workdir)
            return run(args.verbosity)
        finally:
            redis.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
