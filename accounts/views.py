"""The account page: a user's API keys, created (the key shown once), listed with their last use, revoked."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from accounts import selectors, services
from accounts.models import ApiKey


def _page(request: HttpRequest, *, new_key: str = "", error: str = "", status: int = 200) -> HttpResponse:
    scopes = [(value, label) for value, label in ApiKey.Scope.choices]
    if not request.user.is_staff:
        scopes = [(value, label) for value, label in scopes if value != ApiKey.Scope.MANAGE]
    context = {
        "keys": selectors.apikeys_for_user(user=request.user),
        "scopes": scopes,
        "new_key": new_key,
        "error": error,
        "form": request.POST if error else {},
    }
    return render(request, "accounts/account.html", context, status=status)


@never_cache
@login_required
@require_GET
def account(request: HttpRequest) -> HttpResponse:
    return _page(request)


@never_cache
@login_required
@require_POST
def key_create(request: HttpRequest) -> HttpResponse:
    expires = request.POST.get("expires_in_days", "").strip()
    try:
        days = int(expires) if expires else None
    except ValueError:
        return _page(request, error="Expiry must be a whole number of days.", status=400)
    try:
        _key, secret = services.apikey_create(
            user=request.user,
            name=request.POST.get("name", ""),
            scopes=request.POST.getlist("scopes"),
            expires_in_days=days,
        )
    except services.ApiKeyError as exc:
        return _page(request, error=str(exc), status=400)
    # Rendered, not redirected: the key exists in clear only in this response.
    return _page(request, new_key=secret)


@never_cache
@login_required
@require_POST
def key_revoke(request: HttpRequest, key_id: int) -> HttpResponse:
    key = selectors.apikey_get_for_user(user=request.user, key_id=key_id)
    if key is None:
        raise Http404("No such key.")
    services.apikey_revoke(api_key=key)
    return HttpResponseRedirect(reverse("accounts:account"))
