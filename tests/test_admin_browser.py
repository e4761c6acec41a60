"""The namespaces admin in a real browser: Debian's chromium driven by playwright.

Extended suite (``nox -s extended``): needs the ``playwright`` package (the ``browser`` extra)
and a chromium binary (``apt-get install chromium``; never downloaded). Screenshots go to the
test's tmp dir. The site is pytest-django's ``live_server`` (a thread of this process, so the
LocMem namespace it shows is the one the test filled).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test.utils import override_settings

from agenthub_cache import namespaces
from tests.conftest import unique_namespace

pytestmark = [pytest.mark.extended, pytest.mark.django_db(transaction=True)]

CHROMIUM = os.environ.get("AGENTHUB_CACHE_TEST_CHROMIUM") or shutil.which("chromium") or ""
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ENTRIES = 6


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="pip install -e '.[browser]' (the extended suite's extra)"
    )
    if not CHROMIUM:
        pytest.fail("no chromium on PATH: apt-get install chromium (the extended suite needs it)")
    # playwright's sync API keeps an event loop running in this thread, so Django's guard
    # against sync ORM calls from async code would refuse the tests' (synchronous) queries.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_api.sync_playwright() as playwright:
            launched = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
            yield launched
            launched.close()


@pytest.fixture
def namespace(stores: dict[str, Any]) -> Iterator[str]:
    name = unique_namespace("web")
    setting = {"CACHE": "locmem", "NAMESPACES": {name: {"TTL": 600}}}
    with override_settings(AGENTHUB_CACHE=setting):
        service = namespaces[name]
        for i in range(ENTRIES):
            service.set(
                f"signup:{i}",
                {"email": f"user{i}@example.com", "n": i},
                indexes={"email": f"user{i}@example.com"},
            )
        yield name
        namespaces[name].clear()


def log_in(browser: Any, live_server: Any, username: str, tmp_path: Path) -> Any:
    page = browser.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    page.screenshot(path=str(tmp_path / f"{username}-index.png"), full_page=True)
    return page


def entries_cell(page: Any, name: str) -> str:
    text: str = page.inner_text(f'tr[data-namespace="{name}"] td.entries')
    return text.strip()


def test_superuser_browses_searches_and_flushes_with_confirmation(
    browser: Any, live_server: Any, namespace: str, tmp_path: Path
) -> None:
    User.objects.create_superuser("root", "root@example.com", "pw")
    page = log_in(browser, live_server, "root", tmp_path)
    page.click('a:text-is("Namespaces")')
    assert entries_cell(page, namespace) == str(ENTRIES)
    page.screenshot(path=str(tmp_path / "list.png"), full_page=True)

    page.click(f'a:text-is("{namespace}")')
    page.fill("#id_index", "email")
    page.fill("#id_value", "user3@example.com")
    page.click("#index-form input[type=submit]")
    assert page.inner_text("#found-keys").strip() == "signup:3"
    page.screenshot(path=str(tmp_path / "found.png"), full_page=True)

    page.click("#found-keys a")
    value = page.inner_text("#entry-value")
    assert '"email": "user3@example.com"' in value
    assert "email = user3@example.com" in page.inner_text("#entry")
    page.screenshot(path=str(tmp_path / "value.png"), full_page=True)

    page.go_back()
    page.go_back()
    page.click("#flush-button")
    assert page.inner_text("#confirm-count").strip() == f"{ENTRIES} entries"
    page.screenshot(path=str(tmp_path / "confirm.png"), full_page=True)
    assert len(namespaces[namespace].keys()) == ENTRIES  # nothing gone before "Yes"
    page.click("#confirm-button")
    page.wait_for_url(f"{live_server.url}/admin/agenthub_cache/namespace/")
    assert entries_cell(page, namespace) == "0"
    assert "entries removed" in page.inner_text("ul.messagelist")
    page.screenshot(path=str(tmp_path / "flushed.png"), full_page=True)
    assert namespaces[namespace].keys() == []


def test_staff_without_flush_permission_sees_no_flush_control(
    browser: Any, live_server: Any, namespace: str, tmp_path: Path
) -> None:
    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_namespace"))
    page = log_in(browser, live_server, "viewer", tmp_path)
    page.goto(f"{live_server.url}/admin/agenthub_cache/namespace/{namespace}/")
    assert page.locator("#keys li").count() == ENTRIES
    assert page.locator("#flush-button").count() == 0
    assert page.locator("#prune-button").count() == 0
    page.click("#keys a >> nth=0")
    page.wait_for_url("**/key/?key=*")
    page.wait_for_load_state()  # count() does not wait: the entry page must have loaded first
    assert page.locator("#entry-value").count() == 1
    assert page.locator("#delete-button").count() == 0
    page.screenshot(path=str(tmp_path / "viewer-entry.png"), full_page=True)
