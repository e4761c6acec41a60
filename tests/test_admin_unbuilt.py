"""The admin with namespaces whose service cannot be built: its alias's backend cannot be imported
or fails to set up. Every page says so (with the error), a POST changes nothing, none is a 500."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import User
from django.test.utils import override_settings
from django.utils.html import escape

from agenthub_cache import namespaces
from tests.conftest import unique_namespace
from tests.test_admin import ENTRIES, client_for, confirmed_post, csrf_token, ns, url, users

pytestmark = pytest.mark.django_db

__all__ = ["ns", "users"]  # the fixtures, used here

BROKEN_CACHES = {
    "missing": {"BACKEND": "no_such_package.cache.Backend"},
    "bad": {  # imports, but its __init__ fails
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {"CLIENT_CLASS": "no_such_package.Client"},
    },
}


@pytest.fixture
def broken(ns: dict[str, str]) -> Iterator[dict[str, str]]:
    """``missing`` (its backend cannot be imported) and ``bad`` (cannot be instantiated),
    declared beside the namespaces of ``ns``."""
    names = {"missing": unique_namespace("adm"), "bad": unique_namespace("adm")}
    declared = {
        names["missing"]: {"TTL": 60, "CACHE": "missing"},
        names["bad"]: {"TTL": 60, "CACHE": "bad", "FAIL_SILENTLY": True},
    }
    setting = {**settings.AGENTHUB_CACHE}
    setting["NAMESPACES"] = {**setting["NAMESPACES"], **declared}
    with override_settings(CACHES={**settings.CACHES, **BROKEN_CACHES}, AGENTHUB_CACHE=setting):
        yield names


def test_a_namespace_that_cannot_be_built_is_listed_as_unavailable(
    ns: dict[str, str], broken: dict[str, str], users: dict[str, User | None]
) -> None:
    """The list still renders, the other namespaces as always."""
    response = client_for(users["staff, view"]).get(url("changelist"))
    assert response.status_code == 200
    rows = {row.name: row for row in response.context["rows"]}
    assert rows[ns["main"]].entries == ENTRIES
    missing, bad = rows[broken["missing"]], rows[broken["bad"]]
    assert "no_such_package" in (missing.unavailable or "")
    assert missing.alias == "missing"
    assert missing.default_ttl == "1m"
    assert bad.unavailable is not None
    assert bad.fail_silently is True
    html = response.content.decode()
    assert escape(missing.unavailable or "") in html
    assert html.count("unavailable</strong>") == 3  # the dead Redis, and these two


def assert_says_unavailable(response: Any, name: str) -> None:
    """A 503 in the admin's look, naming the namespace and the error; never a 500."""
    assert response.status_code == 503
    html = response.content.decode()
    assert 'id="namespace-unavailable"' in html
    assert "no_such_package" in html  # the error, from the import or the client class
    assert name in html
    assert 'id="site-name"' in html  # the admin's own base template
    assert response.context["row"].unavailable is not None
    assert response.context["row"].alias in {"missing", "bad"}


@pytest.mark.parametrize("which", ["missing", "bad"])
@pytest.mark.parametrize(
    ("view", "query"),
    [
        ("detail", {}),
        ("detail", {"index": "user", "value": "1"}),
        ("detail", {"prefix": "k", "page": "2"}),
        ("key", {"key": "k1"}),
    ],
)
def test_the_pages_of_a_namespace_that_cannot_be_built_say_it_is_unavailable(
    broken: dict[str, str],
    users: dict[str, User | None],
    which: str,
    view: str,
    query: dict[str, str],
) -> None:
    response = client_for(users["staff, view"]).get(url(view, broken[which]), query)
    assert_says_unavailable(response, broken[which])
    assert 'id="flush-button"' not in response.content.decode()


@pytest.mark.parametrize("which", ["missing", "bad"])
@pytest.mark.parametrize("action", ["delete", "prune", "flush"])
@pytest.mark.parametrize("confirm", [False, True])
def test_a_post_to_a_namespace_that_cannot_be_built_changes_nothing_and_says_why(
    ns: dict[str, str],
    broken: dict[str, str],
    users: dict[str, User | None],
    which: str,
    action: str,
    confirm: bool,
) -> None:
    """The confirmation page and the confirmed action alike: nothing removed, nothing logged."""
    client = client_for(users["superuser"])
    if confirm:
        response = confirmed_post(client, url(action, broken[which]), key="k1")
    else:
        token = csrf_token(client)
        response = client.post(url(action, broken[which]), {"csrfmiddlewaretoken": token})
    assert_says_unavailable(response, broken[which])
    assert 'id="nothing-changed"' in response.content.decode()
    assert 'id="confirm-button"' not in response.content.decode()
    assert not LogEntry.objects.exists()
    assert len(namespaces[ns["main"]].keys()) == ENTRIES


def test_permissions_still_come_first(
    broken: dict[str, str], users: dict[str, User | None]
) -> None:
    """A user who may not see or flush gets 403 (or the login page), not the error."""
    name = broken["missing"]
    assert client_for(users["staff, no permission"]).get(url("detail", name)).status_code == 403
    assert client_for(users["anonymous"]).get(url("key", name)).status_code == 302
    viewer = client_for(users["staff, view"])
    assert confirmed_post(viewer, url("flush", name)).status_code == 403
    assert client_for(users["superuser"]).get(url("flush", name)).status_code == 405
