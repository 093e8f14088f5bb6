"""How API requests are authenticated: a personal API key (``Authorization: Bearer psk_…``) or, for the browser,
the Django session with its CSRF token. A key carries scopes; a session may do whatever its user may."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja.errors import HttpError
from ninja.security import HttpBearer, SessionAuth

from accounts import selectors, services
from accounts.models import ApiKey


class ApiKeyAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> Any:
        key = selectors.apikey_get_active(secret=token.strip())
        if key is None:
            return None
        services.apikey_mark_used(api_key=key)
        request.api_key = key
        return key.user


class BrowserSessionAuth(SessionAuth):
    """The signed-in browser; unsafe methods need the CSRF token (ninja checks it before this runs)."""

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = request.user
        if user.is_authenticated and user.is_active:
            request.api_key = None
            return user
        return None


def require_scope(request: HttpRequest, scope: str) -> None:
    """403 unless the request's key grants ``scope`` (a session grants every scope; permissions still apply)."""
    key: ApiKey | None = getattr(request, "api_key", None)
    if key is not None and scope not in key.scopes:
        raise HttpError(403, f"This API key lacks the '{scope}' scope.")


def require_permission(request: HttpRequest, scope: str, permission: str) -> None:
    """A staff operation: the key's scope and the user's permission (checked before any lookup, so a refusal never
    tells whether the object exists)."""
    require_scope(request, scope)
    if not request.auth.has_perm(permission):
        raise HttpError(403, "Your account may not do this.")


def signed_in_or_key(view):
    """For the API's docs and OpenAPI document: a signed-in user or a valid API key; others are sent to sign in
    (the page) or get 401 (the document)."""
    import functools

    from django.contrib.auth.views import redirect_to_login
    from django.http import JsonResponse

    bearer = ApiKeyAuth()

    @functools.wraps(view)
    def guarded(request: HttpRequest, *args, **kwargs):
        if request.user.is_authenticated or bearer(request) is not None:
            return view(request, *args, **kwargs)
        if request.path.endswith(".json"):
            body = {"code": "unauthenticated", "detail": "Send a valid API key (Authorization: Bearer …) or sign in."}
            return JsonResponse(body, status=401, headers={"WWW-Authenticate": 'Bearer realm="protostar"'})
        return redirect_to_login(request.get_full_path())

    return guarded
