from __future__ import annotations

from django.urls import path, register_converter

from example_project.signups import views


class TokenConverter:
    """Only what ``secrets.token_urlsafe(32)`` produces reaches the view (and the cache)."""

    regex = "[A-Za-z0-9_-]{43}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(TokenConverter, "token")

app_name = "signups"
urlpatterns = [
    path("", views.signup, name="signup"),
    path("confirm/<token:token>/", views.confirm, name="confirm"),
    path("namespaces/", views.namespace_list, name="namespaces"),
]
