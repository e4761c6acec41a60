"""The seed's use of the cache, as a site: pending signups, one-time tokens, a rate limit.

* ``signup_cache``: the pending signup, indexed by email, so a second signup with the same
  address replaces the first (``delete_by_index``) and the namespaces page can find it.
* ``confirmation_cache``: token -> signup id. Confirming *pops* the token, so of two clicks (or
  two racing requests) exactly one confirms.
* ``rate_limit_cache``: one counter per client address and minute, ``incr(key, ttl=60)``.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from agenthub_cache import NotSupported, namespaces
from agenthub_cache.instances import confirmation_cache, rate_limit_cache, signup_cache
from example_project.signups.forms import SignupForm

RATE_WINDOW = 60  # seconds


def attempts_allowed() -> int:
    """Signup attempts per client address and window (``settings.SIGNUP_ATTEMPTS_PER_MINUTE``)."""
    return int(getattr(settings, "SIGNUP_ATTEMPTS_PER_MINUTE", 5))


def describe_ttl(seconds: float | None) -> str:
    if seconds is None:
        return "never expires"
    if seconds < 120:
        return f"{seconds:g} s"
    if seconds < 7200:
        return f"{seconds / 60:g} min"
    return f"{seconds / 3600:g} h"


def client_address(request: HttpRequest) -> str:
    # REMOTE_ADDR only: X-Forwarded-For is whatever the client says unless a proxy you run
    # rewrites it, and a rate limit keyed on it could be dodged by sending a new value each time.
    return str(request.META.get("REMOTE_ADDR") or "unknown")


def too_many_attempts(request: HttpRequest) -> HttpResponse | None:
    """Count this attempt; a 429 page once the client is over its limit for the window."""
    key = f"signup:{client_address(request)}"
    attempts = rate_limit_cache.incr(key, ttl=RATE_WINDOW)
    if attempts <= attempts_allowed():
        return None
    try:
        retry_after = rate_limit_cache.ttl(key) or 1
    except NotSupported:  # memcached cannot tell how long a key has left
        retry_after = RATE_WINDOW
    response = render(
        request,
        "signups/rate_limited.html",
        {"retry_after": retry_after, "limit": attempts_allowed()},
        status=429,
    )
    response["Retry-After"] = str(retry_after)
    return response


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    form = SignupForm()
    if request.method == "POST":
        refused = too_many_attempts(request)
        if refused is not None:
            return refused
        form = SignupForm(request.POST)
        if form.is_valid():
            return start_signup(request, form.cleaned_data["email"], form.cleaned_data["name"])
    return render(
        request,
        "signups/signup.html",
        {"form": form, "limit": attempts_allowed(), "window": RATE_WINDOW},
    )


def start_signup(request: HttpRequest, email: str, name: str) -> HttpResponse:
    # One pending signup per address: a new one replaces (and so invalidates) the old link.
    replaced = signup_cache.delete_by_index("email", email)
    signup_id = uuid.uuid4().hex
    pending = {"email": email, "name": name, "created": timezone.now().isoformat()}
    signup_cache.set(signup_id, pending, indexes={"email": email})
    token = secrets.token_urlsafe(32)
    confirmation_cache.set(token, signup_id)

    link = request.build_absolute_uri(reverse("signups:confirm", args=[token]))
    expires = describe_ttl(confirmation_cache.default_ttl)
    send_mail(
        "Confirm your signup",
        f"Hello {name},\n\nconfirm your signup within {expires}: {link}\n",
        None,
        [email],
    )
    return render(
        request,
        "signups/sent.html",
        {"email": email, "link": link, "expires": expires, "replaced": replaced},
    )


@require_http_methods(["GET", "POST"])
def confirm(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a button and changes nothing (mail scanners follow links); POST confirms once."""
    if request.method == "GET":
        if token not in confirmation_cache:
            return render(request, "signups/link_invalid.html", status=410)
        return render(request, "signups/confirm.html", {"token": token})

    signup_id = confirmation_cache.pop(token)
    pending = signup_cache.pop(signup_id) if signup_id is not None else None
    if pending is None:
        return render(request, "signups/link_invalid.html", status=410)
    # A real site would create the account here.
    return render(request, "signups/confirmed.html", {"signup": pending})


@require_GET
async def namespace_list(request: HttpRequest) -> HttpResponse:
    """Every configured namespace with its entry count (async: the API's ``a``-twins)."""
    rows: list[dict[str, Any]] = []
    for name in namespaces:
        service = namespaces[name]
        try:
            entries: int | None = await service.acount()
        except NotSupported:  # memcached and the file cache cannot list their keys
            entries = None
        rows.append(
            {
                "name": name,
                "alias": service.cache_alias,
                "backend": service.provider.describe()["backend"].rsplit(".", 1)[-1],
                "ttl": describe_ttl(service.default_ttl),
                "entries": entries,
                "capabilities": service.capabilities,
            }
        )
    email = request.GET.get("email", "").strip().lower()
    pending = await signup_cache.aget_by_index("email", email) if email else None
    return render(
        request, "signups/namespaces.html", {"rows": rows, "email": email, "pending": pending}
    )
