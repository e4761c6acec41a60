"""The example project: its pages on the tests' SQLite DatabaseCache, and its manage.py for real.

The in-process tests mount the example's urls, templates and middleware on the test settings and
put its namespaces on the ``db`` alias (a real SQLite cache table). The subprocess tests run
``example_project/manage.py`` exactly as the README does, with its own settings and a data
directory of their own, so they prove that a fresh checkout creates its database by itself.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import django
import pytest
from django.conf import settings
from django.core import mail
from django.core.cache import caches
from django.db import connections
from django.test import Client
from django.test.utils import override_settings

from agenthub_cache import namespaces
from agenthub_cache.instances import confirmation_cache, rate_limit_cache, signup_cache
from tests import servers

ROOT = Path(__file__).resolve().parent.parent
MANAGE = ROOT / "example_project" / "manage.py"
LIMIT = 5

#: The example's namespaces, on the tests' SQLite cache; ``temp`` on the file cache, which
#: cannot count its entries (the page says "n/a").
NAMESPACES = {
    "confirmation": {"TTL": 300},
    "signup": {"TTL": 1800},
    "rate_limit": {"TTL": 3600},
    "temp": {"TTL": 60, "CACHE": "files"},
}

#: The test runner already sends mail to ``mail.outbox``; Django 6.1 also wants a mailer named.
LOCMEM_MAIL: dict[str, Any] = (
    {"MAILERS": {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}}
    if django.VERSION >= (6, 1)
    else {}
)


@pytest.fixture
def site() -> Iterator[Client]:
    from example_project import settings as example

    with override_settings(
        INSTALLED_APPS=[*settings.INSTALLED_APPS, "example_project.signups"],
        ROOT_URLCONF=example.ROOT_URLCONF,
        MIDDLEWARE=example.MIDDLEWARE,
        TEMPLATES=example.TEMPLATES,
        SIGNUP_ATTEMPTS_PER_MINUTE=LIMIT,
        AGENTHUB_CACHE={"CACHE": "db", "NAMESPACES": NAMESPACES},
        **LOCMEM_MAIL,
    ):
        for name in NAMESPACES:
            namespaces[name].clear()
        yield Client()
        for name in NAMESPACES:
            namespaces[name].clear()


def sign_up(client: Client, email: str, name: str = "Ada", **extra: Any) -> str:
    """Post the signup form; return the confirmation link's path."""
    response = client.post("/", {"email": email, "name": name}, **extra)
    assert response.status_code == 200
    link: str = response.context["link"]
    assert link.startswith("http://testserver/confirm/")
    return link.removeprefix("http://testserver")


def test_signup_confirms_exactly_once(site: Client) -> None:
    form = site.get("/")
    assert form.status_code == 200
    assert b'name="email"' in form.content

    link = sign_up(site, " Ada@Example.COM ")
    (message,) = mail.outbox
    assert message.to == ["ada@example.com"]
    assert link in message.body
    (signup_id,) = signup_cache.find("email", "ada@example.com")
    assert signup_cache.get(signup_id)["name"] == "Ada"
    assert confirmation_cache.count() == 1

    # Opening the link changes nothing; only the button (a POST) uses it up.
    assert site.get(link).status_code == 200
    assert site.get(link).status_code == 200
    assert confirmation_cache.count() == 1

    confirmed = site.post(link)
    assert confirmed.status_code == 200
    assert b"Welcome, Ada" in confirmed.content
    assert signup_cache.count() == 0
    assert signup_cache.find("email", "ada@example.com") == []
    assert confirmation_cache.count() == 0

    assert site.post(link).status_code == 410
    assert site.get(link).status_code == 410


def test_a_new_signup_replaces_the_pending_one(site: Client) -> None:
    first = sign_up(site, "ada@example.com", "Ada")
    second = sign_up(site, "ada@example.com", "Ada L.")
    assert len(signup_cache.find("email", "ada@example.com")) == 1

    assert site.post(first).status_code == 410
    confirmed = site.post(second)
    assert confirmed.status_code == 200
    assert b"Welcome, Ada L." in confirmed.content


def test_racing_confirmations_have_one_winner(site: Client) -> None:
    link = sign_up(site, "race@example.com")
    statuses: list[int] = []
    start = threading.Barrier(8)

    def click() -> None:
        try:
            start.wait()
            statuses.append(Client().post(link).status_code)
        finally:  # this thread's database connection and cache clients
            connections.close_all()
            caches.close_all()

    threads = [threading.Thread(target=click) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200] + [410] * 7


def test_signup_attempts_are_rate_limited_per_client_address(site: Client) -> None:
    here = "203.0.113.7"
    for _ in range(LIMIT):
        # Invalid posts count too: the limit is on attempts.
        invalid = site.post("/", {"email": "not an address", "name": "x"}, REMOTE_ADDR=here)
        assert invalid.status_code == 200

    refused = site.post("/", {"email": "ada@example.com", "name": "Ada"}, REMOTE_ADDR=here)
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert signup_cache.count() == 0
    assert rate_limit_cache.get("signup:203.0.113.7") == LIMIT + 1
    # incr(..., ttl=60) set the window's TTL, not the namespace's default of an hour.
    remaining = rate_limit_cache.ttl("signup:203.0.113.7")
    assert remaining is not None
    assert 1 <= remaining <= 60

    sign_up(site, "ada@example.com", REMOTE_ADDR="2001:db8::1")
    assert rate_limit_cache.get("signup:2001:db8::1") == 1


def test_namespaces_page_counts_entries_and_says_na_where_it_cannot(site: Client) -> None:
    sign_up(site, "ada@example.com")
    page = site.get("/namespaces/")
    assert page.status_code == 200
    rows = {row["name"]: row for row in page.context["rows"]}
    assert list(rows) == list(NAMESPACES)
    assert rows["signup"]["entries"] == 1
    assert rows["confirmation"]["entries"] == 1
    assert rows["rate_limit"]["entries"] == 1
    assert rows["signup"]["backend"] == "DatabaseCache"
    assert rows["temp"]["entries"] is None
    assert b"n/a" in page.content

    found = site.get("/namespaces/", {"email": "ADA@example.com"})
    assert [p["name"] for p in found.context["pending"].values()] == ["Ada"]
    assert site.get("/namespaces/", {"email": "bob@example.com"}).context["pending"] == {}


def test_malformed_tokens_never_reach_the_cache(site: Client) -> None:
    assert site.get("/confirm/short/").status_code == 404
    assert site.get("/confirm/" + "a" * 300 + "/").status_code == 404
    assert site.get("/confirm/" + "A" * 43 + "/").status_code == 410
    assert site.post("/confirm/" + "A" * 43 + "/").status_code == 410


# -- the example's own manage.py, as a newcomer runs it ------------------------------------------


def example_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(EXAMPLE_DATA_DIR=str(data_dir), AGENTHUB_CACHE_BACKEND="db")
    return env


def manage(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(MANAGE), *args],
        cwd=ROOT,
        env=example_env(data_dir),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_manage_py_check_creates_the_database_and_cache_table(tmp_path: Path) -> None:
    result = manage(tmp_path, "check")
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout
    with closing(sqlite3.connect(tmp_path / "example.sqlite3")) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "example_cache" in tables
    assert manage(tmp_path, "check").returncode == 0  # and again: the set-up step is idempotent


def test_the_example_runs_without_the_redis_extra(tmp_path: Path) -> None:
    """``pip install -e .`` (no extras) installs no redis-py: nothing may import it unasked."""
    no_redis = (
        "import runpy, sys; sys.modules['redis'] = None; sys.argv = [sys.argv[1], *sys.argv[2:]]; "
        "runpy.run_path(sys.argv[0], run_name='__main__')"
    )
    for args in (("check",), ("cache_namespaces", "list")):
        result = subprocess.run(
            [sys.executable, "-c", no_redis, str(MANAGE), *args],
            cwd=ROOT,
            env=example_env(tmp_path),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert "No module named 'redis'" not in result.stderr


def test_a_second_process_sees_what_the_first_stored(tmp_path: Path) -> None:
    write = (
        "from agenthub_cache.instances import signup_cache; "
        "signup_cache.set('s1', {'name': 'Ada'}, indexes={'email': 'a@b.c'})"
    )
    read = (
        "from agenthub_cache.instances import signup_cache; "
        "print(signup_cache.find('email', 'a@b.c'), signup_cache.count())"
    )
    assert manage(tmp_path, "shell", "-v", "0", "-c", write).returncode == 0
    result = manage(tmp_path, "shell", "-v", "0", "-c", read)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['s1'] 1"


def test_runserver_serves_the_site_on_a_fresh_data_directory(tmp_path: Path) -> None:
    port = servers.free_port()
    server = subprocess.Popen(
        [sys.executable, str(MANAGE), "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=example_env(tmp_path),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(base + "/", timeout=5) as response:
                    signup_page = response.read().decode()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert 'name="email"' in signup_page
        with urllib.request.urlopen(base + "/namespaces/", timeout=5) as response:
            listing = response.read().decode()
        for name in ("confirmation", "signup", "session", "rate_limit", "temp"):
            assert f"<code>{name}</code>" in listing
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=10)
    assert "Traceback" not in stderr, stderr
