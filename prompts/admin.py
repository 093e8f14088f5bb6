"""Admin for prompts: one page per shipped prompt with its versions, a new-version form with preview and diff,
activation and roll back. Versions are immutable: the standard change form is replaced by a read-only page."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from prompts import selectors, services
from prompts.errors import PromptError, UnknownPromptError
from prompts.forms import PromptVersionForm
from prompts.models import PromptVersion
from prompts.shipped import ShippedPrompt, shipped_prompt


@admin.register(PromptVersion)
class PromptVersionAdmin(admin.ModelAdmin):
    def get_urls(self) -> list:
        wrap = self.admin_site.admin_view
        return [
            path("", wrap(self.prompt_list_view), name="prompts_promptversion_changelist"),
            path("add/", wrap(self.version_add_view), name="prompts_promptversion_add"),
            path("prompt/<str:name>/", wrap(self.prompt_detail_view), name="prompts_prompt_detail"),
            path("prompt/<str:name>/preview/", wrap(self.default_preview_view), name="prompts_prompt_preview"),
            path("prompt/<str:name>/rollback/", wrap(require_POST(self.rollback_view)), name="prompts_prompt_rollback"),
            path(
                "prompt/<str:name>/use-default/",
                wrap(require_POST(self.use_default_view)),
                name="prompts_prompt_use_default",
            ),
            path("<int:pk>/", wrap(self.version_detail_view), name="prompts_promptversion_change"),
            path("<int:pk>/diff/", wrap(self.version_diff_view), name="prompts_promptversion_diff"),
            path("<int:pk>/preview/", wrap(self.version_preview_view), name="prompts_promptversion_preview"),
            path(
                "<int:pk>/activate/",
                wrap(require_POST(self.version_activate_view)),
                name="prompts_promptversion_activate",
            ),
        ]

    def has_delete_permission(self, request: HttpRequest, obj: PromptVersion | None = None) -> bool:
        return False  # versions are history; activations refer to them

    # --- pages -------------------------------------------------------------------------------------------------
    def prompt_list_view(self, request: HttpRequest) -> HttpResponse:
        self._require(self.has_view_or_change_permission(request))
        context = {"rows": selectors.prompt_overview(), "title": "Prompts"}
        return self._render(request, "admin/prompts/prompt_list.html", context)

    def prompt_detail_view(self, request: HttpRequest, name: str) -> HttpResponse:
        self._require(self.has_view_or_change_permission(request))
        prompt = self._prompt(name)
        can_roll_back, rollback_target = selectors.prompt_rollback_target(name=name)
        context = {
            "prompt": prompt,
            "title": _("Prompt: %(name)s") % {"name": name},
            "active": selectors.prompt_active_version(name=name),
            "versions": selectors.prompt_versions(name=name),
            "activations": selectors.prompt_activations(name=name),
            "can_roll_back": can_roll_back,
            "rollback_target": rollback_target,
            "can_change": self.has_change_permission(request),
            "can_add": self.has_add_permission(request),
        }
        return self._render(request, "admin/prompts/prompt_detail.html", context)

    def version_detail_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        self._require(self.has_view_or_change_permission(request))
        version = get_object_or_404(PromptVersion.objects.select_related("created_by"), pk=pk)
        context = {
            "prompt": self._prompt(version.name),
            "version": version,
            "title": f"{version.name}: version {version.pk}",
            "can_change": self.has_change_permission(request),
        }
        return self._render(request, "admin/prompts/version_detail.html", context)

    def version_diff_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        self._require(self.has_view_or_change_permission(request))
        version = get_object_or_404(PromptVersion, pk=pk)
        prompt = self._prompt(version.name)
        context = {
            "prompt": prompt,
            "version": version,
            "title": f"{version.name}: version {version.pk} against the shipped default",
            "diff": _diff_from_default(prompt, version.body, f"version {version.pk}"),
        }
        return self._render(request, "admin/prompts/diff.html", context)

    def version_preview_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        self._require(self.has_view_or_change_permission(request))
        version = get_object_or_404(PromptVersion, pk=pk)
        return self._preview(request, self._prompt(version.name), version.body, version)

    def default_preview_view(self, request: HttpRequest, name: str) -> HttpResponse:
        self._require(self.has_view_or_change_permission(request))
        prompt = self._prompt(name)
        return self._preview(request, prompt, prompt.body, None)

    def version_add_view(self, request: HttpRequest) -> HttpResponse:
        self._require(self.has_add_permission(request))
        if request.method != "POST":
            form = PromptVersionForm(initial=self._initial(request))
            return self._render_form(request, form)
        form = PromptVersionForm(request.POST)
        if "_preview" in request.POST or not form.is_valid():
            return self._render_form(request, form)
        if form.cleaned_data["activate"] and not self.has_change_permission(request):
            raise PermissionDenied
        data = form.cleaned_data
        try:
            version = services.prompt_version_create(
                name=data["name"],
                body=data["body"],
                note=data["note"],
                created_by=request.user,
                activate=data["activate"],
            )
        except PromptError as exc:  # e.g. the declarations changed between the form check and the save
            form.add_error("body", str(exc))
            return self._render_form(request, form)
        self.log_addition(request, version, [{"added": {}}])
        if data["activate"]:
            saved = _("Version %(number)s of %(name)s saved and activated.")
        else:
            saved = _("Version %(number)s of %(name)s saved (not active yet).")
        self.message_user(request, saved % {"number": version.pk, "name": version.name}, messages.SUCCESS)
        return self._redirect_detail(version.name)

    # --- actions (POST only) -----------------------------------------------------------------------------------
    def version_activate_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        self._require(self.has_change_permission(request))
        version = get_object_or_404(PromptVersion, pk=pk)
        self._act(
            request,
            lambda: services.prompt_version_activate(version_id=pk, user=request.user),
            _("Version %(number)s of %(name)s is now active.") % {"number": pk, "name": version.name},
        )
        return self._redirect_detail(version.name)

    def rollback_view(self, request: HttpRequest, name: str) -> HttpResponse:
        self._require(self.has_change_permission(request))
        self._prompt(name)
        try:
            target = services.prompt_rollback(name=name, user=request.user)
        except PromptError as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            if target:
                done = _("Rolled back %(name)s: version %(number)s is now active.") % {
                    "name": name,
                    "number": target.pk,
                }
            else:
                done = _("Rolled back %(name)s: the shipped default is now active.") % {"name": name}
            self.message_user(request, done, messages.SUCCESS)
        return self._redirect_detail(name)

    def use_default_view(self, request: HttpRequest, name: str) -> HttpResponse:
        self._require(self.has_change_permission(request))
        self._prompt(name)
        self._act(
            request,
            lambda: services.prompt_default_activate(name=name, user=request.user),
            _("The shipped default of %(name)s is now active.") % {"name": name},
        )
        return self._redirect_detail(name)

    # --- helpers -----------------------------------------------------------------------------------------------
    def _act(self, request: HttpRequest, action, success: str = "") -> bool:
        try:
            action()
        except PromptError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return False
        if success:
            self.message_user(request, success, messages.SUCCESS)
        return True

    def _preview(self, request: HttpRequest, prompt: ShippedPrompt, body: str, version: PromptVersion | None):
        context = {
            "prompt": prompt,
            "version": version,
            "title": (
                _("%(name)s: preview of version %(number)s") % {"name": prompt.name, "number": version.pk}
                if version
                else _("%(name)s: preview of the shipped default") % {"name": prompt.name}
            ),
            "results": selectors.prompt_preview(name=prompt.name, body=body),
        }
        return self._render(request, "admin/prompts/preview.html", context)

    def _render_form(self, request: HttpRequest, form: PromptVersionForm) -> HttpResponse:
        name = form["name"].value()
        context: dict = {"form": form, "title": _("New prompt version"), "prompt": None}
        try:
            prompt = shipped_prompt(name) if name else None
        except UnknownPromptError:
            prompt = None
        if prompt is not None and request.method == "POST":
            body = form["body"].value() or ""
            context["diff"] = _diff_from_default(prompt, body, "this version")
            context["results"] = selectors.prompt_preview(name=prompt.name, body=body)
        context["prompt"] = prompt
        return self._render(request, "admin/prompts/version_form.html", context)

    def _initial(self, request: HttpRequest) -> dict:
        # Start from the version asked for (?from=<id>), else the active text, else the shipped file.
        name = request.GET.get("name", "")
        source = (
            PromptVersion.objects.filter(pk=request.GET["from"]).first()
            if request.GET.get("from", "").isdigit()
            else None
        )
        if source is None and name:
            source = selectors.prompt_active_version(name=name)
        if source is not None:
            return {"name": source.name, "body": source.body}
        try:
            return {"name": name, "body": shipped_prompt(name).body} if name else {}
        except UnknownPromptError:
            return {}

    def _prompt(self, name: str) -> ShippedPrompt:
        try:
            return shipped_prompt(name)
        except UnknownPromptError as exc:
            raise Http404(str(exc)) from exc

    def _require(self, allowed: bool) -> None:
        if not allowed:
            raise PermissionDenied

    def _redirect_detail(self, name: str) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:prompts_prompt_detail", args=[name]))

    def _render(self, request: HttpRequest, template: str, context: dict) -> TemplateResponse:
        base = {**self.admin_site.each_context(request), "opts": self.model._meta, "app_label": "prompts"}
        return TemplateResponse(request, template, {**base, **context})


def _diff_from_default(prompt: ShippedPrompt, body: str, label: str) -> list[selectors.DiffLine]:
    return selectors.prompt_diff(old=prompt.body, new=body, old_label=f"shipped {prompt.path.name}", new_label=label)
