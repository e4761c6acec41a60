"""The namespaces in the Django admin: list, browse keys, look up by index, delete, prune, flush.

``NamespaceAdmin`` is registered on ``admin.site``; register it on a custom site with
``site.register(Namespace, NamespaceAdmin)``. Seeing the pages takes
``agenthub_cache.view_namespace``; deleting a key, pruning and flushing take
``agenthub_cache.flush_namespace``, and are POST only (CSRF-checked by the admin), behind a
confirmation page, and recorded in ``LogEntry``. Services come from ``namespaces[...]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin.models import CHANGE, LogEntry
from django.core.exceptions import PermissionDenied
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.http import urlencode

from agenthub_cache import admin_data
from agenthub_cache.exceptions import CacheError, NotSupported
from agenthub_cache.factory import namespaces
from agenthub_cache.management import render
from agenthub_cache.models import Namespace
from agenthub_cache.service import CacheService

FLUSH_PERMISSION = "agenthub_cache.flush_namespace"
#: The three actions that remove data: what each confirmation page says it will remove.
ACTIONS = {
    "delete": "Delete one entry",
    "prune": "Prune dead index members",
    "flush": "Flush the whole namespace",
}


class Unbuilt(Exception):
    """The service of a configured namespace cannot be built (its backend cannot be imported
    or instantiated): its pages say so instead of failing."""

    def __init__(self, name: str, error: Exception) -> None:
        super().__init__(name, error)
        self.name, self.error = name, error


if TYPE_CHECKING:
    _ModelAdmin = admin.ModelAdmin[Namespace]
else:
    _ModelAdmin = admin.ModelAdmin


class NamespaceAdmin(_ModelAdmin):
    """Pages for the configured namespaces; there are no rows to add or change."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_flush_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm(FLUSH_PERMISSION))

    @property
    def url_prefix(self) -> str:
        """``agenthub_cache_namespace``: URL names are this + ``_changelist``, ``_detail``..."""
        return f"{self.opts.app_label}_{self.opts.model_name}"

    def get_urls(self) -> list[URLPattern]:
        view, prefix = self.admin_site.admin_view, self.url_prefix
        return [
            path("", view(self.changelist_view), name=f"{prefix}_changelist"),
            path("<str:name>/", view(self.namespace_view), name=f"{prefix}_detail"),
            path("<str:name>/key/", view(self.key_view), name=f"{prefix}_key"),
            *(
                path(
                    f"<str:name>/{action}/",
                    view(self.action_view),
                    {"action": action},
                    name=f"{prefix}_{action}",
                )
                for action in ACTIONS
            ),
        ]

    # -- helpers ------------------------------------------------------------------------------

    def url(self, name: str, *args: str, query: dict[str, Any] | None = None) -> str:
        site = self.admin_site.name
        found = reverse(f"{site}:{self.url_prefix}_{name}", args=args, current_app=site)
        return f"{found}?{urlencode(query)}" if query else found

    def require_view(self, request: HttpRequest) -> None:
        if not self.has_view_permission(request):
            raise PermissionDenied

    def service(self, name: str) -> CacheService:
        """The namespace's service: 404 if not configured, ``Unbuilt`` if it cannot be built."""
        if name not in namespaces:
            raise Http404(f"No cache namespace {name!r} is configured.")
        try:
            return namespaces[name]
        except Exception as exc:  # its alias's backend cannot be imported or set up
            raise Unbuilt(name, exc) from exc

    def unavailable(
        self, request: HttpRequest, unbuilt: Unbuilt, action: str | None = None
    ) -> HttpResponse:
        """503 in the admin's look: the namespace's settings and why it cannot be reached;
        for an action, that nothing was changed."""
        row = admin_data.unbuilt_row(unbuilt.name, unbuilt.error)
        context = self.context(
            request,
            f"Cache namespace {unbuilt.name} is unavailable",
            row=row,
            action_title=ACTIONS.get(action or ""),
            has_flush_permission=False,  # nothing to offer: the store cannot be reached
        )
        response = self.render(request, "unavailable.html", context)
        response.status_code = 503
        return response

    def context(self, request: HttpRequest, title: str, **extra: Any) -> dict[str, Any]:
        return {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.opts,
            "app_label": self.opts.app_label,
            "changelist_url": self.url("changelist"),
            "has_flush_permission": self.has_flush_permission(request),
            **extra,
        }

    def render(self, request: HttpRequest, template: str, context: dict[str, Any]) -> HttpResponse:
        request.current_app = self.admin_site.name
        return TemplateResponse(request, f"admin/agenthub_cache/namespace/{template}", context)

    # -- pages --------------------------------------------------------------------------------

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        self.require_view(request)
        rows = []
        for name in namespaces:
            try:
                service = namespaces[name]
            except Exception as exc:  # cannot be built: listed as unavailable, never a 500
                rows.append(admin_data.unbuilt_row(name, exc))
                continue
            row = admin_data.namespace_row(service)
            row.url = self.url("detail", row.name)
            rows.append(row)
        context = self.context(request, "Cache namespaces", rows=rows, **(extra_context or {}))
        return self.render(request, "change_list.html", context)

    def namespace_view(self, request: HttpRequest, name: str) -> HttpResponse:
        self.require_view(request)
        try:
            service = self.service(name)
        except Unbuilt as unbuilt:
            return self.unavailable(request, unbuilt)
        prefix = request.GET.get("prefix", "")
        page_size = admin_data.clamp(
            request.GET.get("per_page"), admin_data.PAGE_SIZE, 1, admin_data.MAX_PAGE_SIZE
        )
        page_number = admin_data.clamp(request.GET.get("page"), 1, 1, admin_data.MAX_KEYS_READ)
        index, value = request.GET.get("index", ""), request.GET.get("value", "")
        context = self.context(
            request,
            f"Cache namespace {name}",
            row=admin_data.describe(service),
            prefix=prefix,
            index=index,
            index_value=value,
            max_page_size=admin_data.MAX_PAGE_SIZE,
        )
        try:
            if index:
                found = service.find(index, value)
                context["found"] = self.key_links(name, found[: admin_data.MAX_FOUND])
                context["found_total"] = len(found)
            else:
                page = admin_data.key_page(service, prefix, page_number, page_size)
                context["key_page"] = page
                context["keys"] = self.key_links(name, page.keys)
                query = {"prefix": prefix, "per_page": page_size}
                if page.previous_page:
                    context["previous_url"] = self.url(
                        "detail", name, query={**query, "page": page.previous_page}
                    )
                if page.next_page:
                    context["next_url"] = self.url(
                        "detail", name, query={**query, "page": page.next_page}
                    )
        except NotSupported as exc:
            context["not_listable"] = str(exc)
        except ValueError as exc:  # an invalid index name (InvalidKey) names what is wrong
            context["bad_input"] = str(exc)
        except (CacheError, OSError) as exc:
            context["unavailable"] = admin_data.problem(exc)
        metrics = service.metrics()
        context["metrics"] = metrics
        context["metric_rows"] = admin_data.metric_rows(metrics)
        context["prune_url"] = self.url("prune", name)
        context["flush_url"] = self.url("flush", name)
        return self.render(request, "namespace.html", context)

    def key_links(self, name: str, keys: list[str]) -> list[tuple[str, str, str]]:
        """``(key, key as shown, its page)``: control characters escaped, long keys cut."""
        return [(k, render.shown(k), self.url("key", name, query={"key": k})) for k in keys]

    def key_view(self, request: HttpRequest, name: str) -> HttpResponse:
        self.require_view(request)
        try:
            service = self.service(name)
        except Unbuilt as unbuilt:
            return self.unavailable(request, unbuilt)
        key = request.GET.get("key", "")
        context = self.context(
            request,
            f"Entry of cache namespace {name}",
            name=name,
            key=key,
            namespace_url=self.url("detail", name),
            delete_url=self.url("delete", name),
        )
        try:
            context["detail"] = admin_data.key_detail(service, key)
        except ValueError as exc:
            context["bad_input"] = str(exc)
        except (CacheError, OSError) as exc:
            context["unavailable"] = admin_data.problem(exc)
        return self.render(request, "key.html", context)

    # -- the actions that remove data ---------------------------------------------------------

    def action_view(self, request: HttpRequest, name: str, action: str) -> HttpResponse:
        """POST without ``confirm``: the confirmation page; with it: do it, log it, go back."""
        if not (self.has_view_permission(request) and self.has_flush_permission(request)):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        try:
            service = self.service(name)
        except Unbuilt as unbuilt:  # nothing to confirm or do: say so, change nothing
            return self.unavailable(request, unbuilt, action)
        key = request.POST.get("key", "")
        try:
            if request.POST.get("confirm") != "yes":
                return self.confirm(request, service, action, key)
            count = self.perform(service, action, key)
        except ValueError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return HttpResponseRedirect(self.url("detail", name))
        except (CacheError, OSError) as exc:
            self.message_user(request, admin_data.problem(exc), messages.ERROR)
            return HttpResponseRedirect(self.url("detail", name))
        message = self.log(request, service, action, key, count)
        self.message_user(request, message, messages.SUCCESS)
        if action == "flush":
            return HttpResponseRedirect(self.url("changelist"))
        return HttpResponseRedirect(self.url("detail", name))

    def confirm(
        self, request: HttpRequest, service: CacheService, action: str, key: str
    ) -> HttpResponse:
        context = self.context(
            request,
            f"{ACTIONS[action]}: are you sure?",
            name=service.namespace,
            action=action,
            action_title=ACTIONS[action],
            key=key,
            action_url=self.url(action, service.namespace),
            namespace_url=self.url("detail", service.namespace),
        )
        if action == "delete":
            context["detail"] = admin_data.key_detail(service, key)
        elif action == "flush":
            context["count"] = admin_data.count_or_none(service)
        return self.render(request, "confirm.html", context)

    def perform(self, service: CacheService, action: str, key: str) -> int | None:
        if action == "delete":
            return int(service.delete(key))
        if action == "prune":
            return service.prune()
        return service.clear()

    def log(
        self, request: HttpRequest, service: CacheService, action: str, key: str, count: int | None
    ) -> str:
        """Record the action in ``LogEntry`` (user, namespace, action, count); the message."""
        amount = "an unknown number of" if count is None else str(count)
        if action == "delete":
            message = f"Deleted entry {key!r} of namespace {service.namespace!r}" + (
                "." if count else " (it was already gone)."
            )
        elif action == "prune":
            message = f"Pruned {amount} dead index members of namespace {service.namespace!r}."
        else:
            message = f"Flushed namespace {service.namespace!r}: {amount} entries removed."
        LogEntry.objects.log_actions(
            user_id=request.user.pk or 0,  # the admin only lets signed-in staff this far
            queryset=[Namespace(name=service.namespace)],
            action_flag=CHANGE,
            change_message=message[:4000],
            single_object=True,
        )
        return message


admin.site.register(Namespace, NamespaceAdmin)
