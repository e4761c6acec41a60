"""URLs of the admin tests: Django's ``admin.site`` and a custom ``AdminSite``."""

from __future__ import annotations

from django.contrib import admin
from django.urls import path

from agenthub_cache.admin import NamespaceAdmin
from agenthub_cache.models import Namespace

custom_site = admin.AdminSite(name="custom_admin")
custom_site.register(Namespace, NamespaceAdmin)

urlpatterns = [
    path("admin/", admin.site.urls),
    path("custom-admin/", custom_site.urls),
]
