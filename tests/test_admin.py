"""The namespaces admin through Django's test client: every permission x method, bad input.

Namespaces live on the shared LocMem alias (the test client runs in this process) and on the
private Redis; a dead Redis alias shows how a down store is rendered.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.core.cache import caches
from django.test import Client
from django.test.utils import override_settings
from django.urls import reverse
from django.utils.crypto import get_random_string
from django.utils.html import escape

from agenthub_cache import admin_data, namespaces
from agenthub_cache.management import render
from tests import servers
from tests.conftest import unique_namespace

pytestmark = pytest.mark.django_db

ENTRIES = 5


@pytest.fixture
def ns(stores: dict[str, Any]) -> Iterator[dict[str, str]]:
    """Three namespaces: ``main`` on LocMem, ``redis`` on Redis, ``down`` on a dead Redis."""
    names = {
        "main": unique_namespace("adm"),
        "redis": unique_namespace("adm"),
        "down": unique_namespace("adm"),
        "secret": unique_namespace("adm"),
    }
    dead = {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": f"redis://127.0.0.1:{servers.free_port()}/0",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
    }
    setting = {
        "CACHE": "locmem",
        "NAMESPACES": {
            names["main"]: {"TTL": 600},
            names["redis"]: {"TTL": 600, "CACHE": "redis"},
            names["down"]: {"TTL": 600, "CACHE": "dead", "FAIL_SILENTLY": True},
            names["secret"]: {"TTL": 600, "SENSITIVE": True, "METRICS": False},
        },
    }
    with override_settings(CACHES={**stores, "dead": dead}, AGENTHUB_CACHE=setting):
        for which in ("main", "redis"):
            service = namespaces[names[which]]
            for i in range(ENTRIES):
                service.set(f"k{i}", {"n": i}, indexes={"user": str(i % 2)})
        namespaces[names["secret"]].set("token", "s3cret-value")
        yield names
        for which in ("main", "redis", "secret"):
            namespaces[names[which]].clear()
        caches["dead"].close()


def make_user(username: str, *perms: str, staff: bool = True, superuser: bool = False) -> User:
    user = User.objects.create_user(username, password="pw", is_staff=staff)
    user.is_superuser = superuser
    user.save()
    for codename in perms:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return user


@pytest.fixture
def users(db: Any) -> dict[str, User | None]:
    return {
        "anonymous": None,
        "not staff": make_user("member", "view_namespace", "flush_namespace", staff=False),
        "staff, no permission": make_user("staff"),
        "staff, view": make_user("viewer", "view_namespace"),
        "staff, flush only": make_user("flusher", "flush_namespace"),
        "staff, view + flush": make_user("operator", "view_namespace", "flush_namespace"),
        "superuser": make_user("root", superuser=True),
    }


def client_for(user: User | None) -> Client:
    client = Client(enforce_csrf_checks=True)
    if user is not None:
        client.force_login(user)
    return client


def csrf_token(client: Client) -> str:
    """A CSRF cookie and the matching form token, as a page of the admin would have set."""
    secret = get_random_string(32)
    client.cookies["csrftoken"] = secret
    return secret


def url(name: str, *args: str, site: str = "admin") -> str:
    return reverse(f"{site}:agenthub_cache_namespace_{name}", args=args)


def snapshot(names: dict[str, str]) -> dict[str, list[str]]:
    return {w: sorted(namespaces[names[w]].keys()) for w in ("main", "redis")}


def test_the_migration_creates_both_permissions(db: Any) -> None:
    codenames = set(
        Permission.objects.filter(content_type__app_label="agenthub_cache").values_list(
            "codename", flat=True
        )
    )
    assert codenames == {"view_namespace", "flush_namespace"}


def test_changelist_url_name_reverses() -> None:
    assert (
        reverse("admin:agenthub_cache_namespace_changelist") == "/admin/agenthub_cache/namespace/"
    )


VIEWS = ["changelist", "detail", "key"]
ACTIONS = ["delete", "prune", "flush"]
#: user -> what a GET of a page gives: 200, 403 (staff lacking view_namespace), 302 (login)
PAGE_STATUS = {
    "anonymous": 302,
    "not staff": 302,
    "staff, no permission": 403,
    "staff, view": 200,
    "staff, flush only": 403,
    "staff, view + flush": 200,
    "superuser": 200,
}
ALLOWED_TO_REMOVE = {"staff, view + flush", "superuser"}


@pytest.mark.parametrize("view", VIEWS)
def test_every_user_gets_the_pages_they_may_see_and_a_get_changes_nothing(
    ns: dict[str, str], users: dict[str, User | None], view: str
) -> None:
    before = snapshot(ns)
    args = () if view == "changelist" else (ns["main"],)
    query = {"key": "k1"} if view == "key" else {}
    for who, user in users.items():
        response = client_for(user).get(url(view, *args), query)
        assert response.status_code == PAGE_STATUS[who], who
        if response.status_code == 302:
            assert response["Location"].startswith("/admin/login/"), who
        if response.status_code == 200:
            shows_flush = b'id="flush-button"' in response.content
            shows_delete = b'id="delete-button"' in response.content
            may = who in ALLOWED_TO_REMOVE
            if view == "detail":
                assert shows_flush is may, who
            if view == "key":
                assert shows_delete is may, who
    assert snapshot(ns) == before


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("confirm", [False, True])
@pytest.mark.parametrize("method", ["get", "post"])
def test_no_unauthorized_delete_prune_or_flush(
    ns: dict[str, str], users: dict[str, User | None], action: str, confirm: bool, method: str
) -> None:
    """Every user x method x confirmed or not: only allowed, confirmed POSTs remove anything."""
    removed_by = []
    for who, user in users.items():
        before = snapshot(ns)
        client = client_for(user)
        data = {"key": "k1", **({"confirm": "yes"} if confirm else {})}
        if method == "post":
            data["csrfmiddlewaretoken"] = csrf_token(client)
            response = client.post(url(action, ns["main"]), data)
        else:
            response = client.get(url(action, ns["main"]), data)
        status = response.status_code
        if who in ("anonymous", "not staff"):
            assert (status, response["Location"][:13]) == (302, "/admin/login/"), who
        elif who not in ALLOWED_TO_REMOVE:
            assert status == 403, who
        elif method == "get":
            assert status == 405, who
        elif not confirm:
            assert status == 200, who
            assert b'id="confirm-button"' in response.content, who
        else:
            assert status == 302, who
        if snapshot(ns) != before:
            removed_by.append(who)
        for i in range(ENTRIES):  # put back whatever was removed
            namespaces[ns["main"]].set(f"k{i}", {"n": i}, indexes={"user": str(i % 2)})
    expected = sorted(ALLOWED_TO_REMOVE) if (method, confirm) == ("post", True) else []
    if action == "prune":
        expected = []  # prune never removes a live entry
    assert sorted(removed_by) == expected


def test_a_post_without_the_csrf_token_is_refused(
    ns: dict[str, str], users: dict[str, User | None]
) -> None:
    client = client_for(users["superuser"])
    response = client.post(url("flush", ns["main"]), {"confirm": "yes"})
    assert response.status_code == 403
    assert len(namespaces[ns["main"]].keys()) == ENTRIES


def confirmed_post(client: Client, path: str, **data: str) -> Any:
    token = csrf_token(client)
    return client.post(path, {"csrfmiddlewaretoken": token, "confirm": "yes", **data})


def test_flush_shows_the_count_then_drops_the_namespace_alone_and_logs_it(
    ns: dict[str, str], users: dict[str, User | None]
) -> None:
    client = client_for(users["staff, view + flush"])
    token = csrf_token(client)
    page = client.post(url("flush", ns["redis"]), {"csrfmiddlewaretoken": token})
    assert b'id="confirm-count"' in page.content
    assert f"{ENTRIES} entries".encode() in page.content
    assert len(namespaces[ns["redis"]].keys()) == ENTRIES  # the confirmation page removed nothing
    response = confirmed_post(client, url("flush", ns["redis"]))
    assert response.status_code == 302
    assert response["Location"] == url("changelist")
    assert namespaces[ns["redis"]].keys() == []
    assert len(namespaces[ns["main"]].keys()) == ENTRIES
    entry = LogEntry.objects.get()
    assert entry.user == users["staff, view + flush"]
    assert entry.object_id == ns["redis"]
    assert entry.content_type is not None
    assert entry.content_type.model == "namespace"
    assert f"{ENTRIES} entries removed" in entry.get_change_message()


def test_delete_one_key_and_prune_are_logged(
    ns: dict[str, str], users: dict[str, User | None]
) -> None:
    client = client_for(users["superuser"])
    service = namespaces[ns["main"]]
    response = confirmed_post(client, url("delete", ns["main"]), key="k3")
    assert response.status_code == 302
    assert sorted(service.keys()) == ["k0", "k1", "k2", "k4"]
    assert service.find("user", "1") == ["k1"]
    confirmed_post(client, url("prune", ns["main"]))
    messages = [e.get_change_message() for e in LogEntry.objects.order_by("pk")]
    assert messages[0] == f"Deleted entry 'k3' of namespace {ns['main']!r}."
    assert messages[1].startswith("Pruned ")


def test_changelist_shows_every_namespace_and_a_down_store_as_unavailable(
    ns: dict[str, str], users: dict[str, User | None]
) -> None:
    namespaces[ns["main"]].get("k0")
    namespaces[ns["main"]].get("nope")
    response = client_for(users["staff, view"]).get(url("changelist"))
    assert response.status_code == 200
    html = response.content.decode()
    for name in ns.values():
        assert name in html
    rows = {row.name: row for row in response.context["rows"]}
    assert rows[ns["main"]].entries == ENTRIES
    assert rows[ns["main"]].index_names == ["user"]
    assert rows[ns["main"]].metrics["hits"] >= 1
    assert rows[ns["main"]].metrics["misses"] >= 1
    assert rows[ns["redis"]].entries == ENTRIES
    assert rows[ns["down"]].unavailable is not None
    assert "unavailable" in html
    assert "CacheUnavailable" in rows[ns["down"]].unavailable
    assert rows[ns["secret"]].metrics == {"enabled": False}
    assert "metrics off" in html


def test_the_app_is_in_the_admin_index(users: dict[str, User | None]) -> None:
    html = client_for(users["staff, view"]).get("/admin/").content.decode()
    assert url("changelist") in html
    assert "Namespaces" in html


def test_a_custom_admin_site_serves_the_same_pages(
    ns: dict[str, str], users: dict[str, User | None]
) -> None:
    client = client_for(users["superuser"])
    page = client.get(url("detail", ns["main"], site="custom_admin"))
    assert page.status_code == 200
    assert url("key", ns["main"], site="custom_admin") in page.content.decode()
    assert client.get(url("changelist", site="custom_admin")).status_code == 200
    response = confirmed_post(client, url("flush", ns["main"], site="custom_admin"))
    assert response["Location"] == url("changelist", site="custom_admin")
    assert namespaces[ns["main"]].keys() == []


def test_unknown_namespace_is_404(users: dict[str, User | None], ns: dict[str, str]) -> None:
    client = client_for(users["superuser"])
    for view in ("detail", "key"):
        assert client.get(url(view, "no-such-namespace")).status_code == 404
    assert confirmed_post(client, url("flush", "no-such-namespace")).status_code == 404


HOSTILE = ["<script>alert(1)</script>", "a\x00b\x7f", "é" * 3000, "' onmouseover='x", "\\*?[x]"]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_odd_keys_and_values_are_shown_escaped(
    ns: dict[str, str], users: dict[str, User | None], hostile: str
) -> None:
    service = namespaces[ns["redis"]]
    service.set(hostile, hostile, indexes={"odd": hostile})
    client = client_for(users["superuser"])
    pages = [
        client.get(url("detail", ns["redis"]), {"per_page": "500"}),
        client.get(url("detail", ns["redis"]), {"prefix": hostile}),
        client.get(url("detail", ns["redis"]), {"index": "odd", "value": hostile}),
        client.get(url("key", ns["redis"]), {"key": hostile}),
    ]
    for page in pages:
        assert page.status_code == 200
        assert "<script>alert" not in page.content.decode()
    assert [k for k, _, _ in pages[1].context["keys"]] == [hostile]  # a literal prefix, no glob
    assert [k for k, _, _ in pages[2].context["found"]] == [hostile]
    assert json.loads(pages[3].context["detail"].value_text) == hostile
    shown = escape(render.shown(hostile))  # control characters escaped, long keys cut
    for page in (pages[0], pages[3]):
        assert f">{shown}</code>" in page.content.decode()


def test_a_value_is_pretty_printed_cut_and_hidden_when_sensitive(
    ns: dict[str, str], users: dict[str, User | None]
) -> None:
    service = namespaces[ns["main"]]
    service.set("big", {"text": "x" * (admin_data.MAX_VALUE_CHARS * 2)}, indexes={"kind": "big"})
    client = client_for(users["superuser"])
    detail = client.get(url("key", ns["main"]), {"key": "big"}).context["detail"]
    assert detail.truncated
    assert len(detail.value_text) == admin_data.MAX_VALUE_CHARS
    assert detail.indexes == {"kind": "big"}
    assert detail.ttl == "10m"
    pretty = client.get(url("key", ns["main"]), {"key": "k2"})
    assert '"n": 2' in pretty.context["detail"].value_text
    secret = client.get(url("key", ns["secret"]), {"key": "token"})
    assert secret.context["detail"].hidden
    assert b"s3cret-value" not in secret.content


def test_pages_of_keys_and_a_page_size_past_the_cap_is_clamped(
    ns: dict[str, str], users: dict[str, User | None]
) -> None:
    client = client_for(users["superuser"])
    seen: list[str] = []
    page = client.get(url("detail", ns["redis"]), {"per_page": "2"})
    while True:
        seen += [k for k, _, _ in page.context["keys"]]
        if "next_url" not in page.context:
            break
        page = client.get(page.context["next_url"])
    assert sorted(seen) == [f"k{i}" for i in range(ENTRIES)]
    huge = client.get(url("detail", ns["redis"]), {"per_page": "100000000", "page": "x"})
    assert huge.context["key_page"].page_size == admin_data.MAX_PAGE_SIZE
    assert huge.context["key_page"].page == 1
    far = client.get(url("detail", ns["redis"]), {"per_page": "500", "page": "999999"})
    assert far.context["key_page"].capped


def test_an_invalid_index_name_is_a_message_not_an_error(
    ns: dict[str, str], users: dict[str, User | None]
) -> None:
    page = client_for(users["superuser"]).get(
        url("detail", ns["main"]), {"index": "<bad name>", "value": "1"}
    )
    assert page.status_code == 200
    assert "index name" in page.context["bad_input"]
    assert "<bad name>" not in page.content.decode()


def test_the_namespace_page_shows_redis_totals(users: dict[str, User | None]) -> None:
    from agenthub_cache import metrics_redis

    name = unique_namespace("adm")
    setting = {"NAMESPACES": {name: {"TTL": 60, "CACHE": "redis", "METRICS": "redis"}}}
    with override_settings(AGENTHUB_CACHE=setting):
        service = namespaces[name]
        service.set("k", 1)
        service.get("k")
        metrics_redis.push()
        page = client_for(users["staff, view"]).get(url("detail", name))
        assert page.context["metrics"]["totals"]["hits"] == 1
        assert "hits 1, misses 0, sets 1" in page.content.decode()
        service.clear()
        metrics_redis.push()  # the clear's counts now: a later push would write the hash again
        service.provider.connection.client.delete(metrics_redis.totals_key(service))  # type: ignore[attr-defined]


def hashing_key_function(key: str, key_prefix: str, version: int) -> str:
    """A KEY_FUNCTION that hides the namespace prefix: such a cache cannot be listed."""
    return hashlib.sha256(f"{key_prefix}:{version}:{key}".encode()).hexdigest()


def test_a_cache_whose_key_function_hides_prefixes_is_not_listable_not_unavailable(
    stores: dict[str, Any], users: dict[str, User | None]
) -> None:
    name = unique_namespace("adm")
    hidden = {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "hidden-prefixes",
        "KEY_FUNCTION": hashing_key_function,
    }
    setting = {"NAMESPACES": {name: {"TTL": 60, "CACHE": "hidden"}}}
    with override_settings(CACHES={**stores, "hidden": hidden}, AGENTHUB_CACHE=setting):
        namespaces[name].set("k", 1)
        client = client_for(users["staff, view"])
        row = client.get(url("changelist")).context["rows"][0]
        assert (row.listable, row.unavailable) == (False, None)
        page = client.get(url("detail", name))
        assert "cannot be listed" in page.context["not_listable"]
        namespaces[name].delete("k")  # such a namespace cannot be flushed either
