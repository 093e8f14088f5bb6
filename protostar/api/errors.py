"""Errors as JSON: a ``code`` and a sentence, the fields at fault for 422, nothing internal (details go to the log).

401, 403 and 404 never tell "not yours" from "not there": objects are looked up among the caller's own, and
permission checks run before any lookup."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError, Throttled, ValidationError

logger = logging.getLogger(__name__)

# How a service error's code (chat's ``ChatError``) maps to a status (the socket sends these codes in ``error``
# events).
SERVICE_ERROR_STATUS = {"not_found": 404, "invalid": 422, "too_long": 422}


class FieldError(Schema):
    field: str
    message: str


class ErrorOut(Schema):
    code: str
    detail: str
    errors: list[FieldError] | None = None


# The refusals any operation may answer (400: a body that is not JSON or not multipart).
ERROR_RESPONSES = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut}


class Refused(Exception):
    """A request refused with a status, a code and a sentence (``retry_after`` seconds for 429)."""

    def __init__(self, status: int, code: str, detail: str, *, field: str = "", retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.retry_after = status, code, detail, retry_after
        self.field = field


Render = Callable[[NinjaAPI, HttpRequest, int, str, str, list[dict] | None], HttpResponse]


def render_error(api: NinjaAPI, request: HttpRequest, status: int, code: str, detail: str, errors=None) -> HttpResponse:
    body: dict[str, Any] = {"code": code, "detail": detail}
    if errors is not None:
        body["errors"] = errors
    return api.create_response(request, body, status=status)


def _field_errors(exc: ValidationError) -> list[dict[str, str]]:
    found = []
    for error in exc.errors:
        # ninja puts the source first ("body", "query", "path", "form", "file"), then for a JSON body the view's
        # parameter name; the rest names the field.
        loc = [str(part) for part in error.get("loc", ())]
        skip = 2 if loc[:1] == ["body"] and len(loc) > 2 else 1
        field = ".".join(loc[skip:] if len(loc) > skip else loc) or "request"
        found.append({"field": field, "message": str(error.get("msg", "is invalid"))})
    return found


def install(api: NinjaAPI, render: Render = render_error, *, service_errors: tuple[type[Exception], ...] = ()) -> None:
    """Every error the API can return, as ``render`` shapes it (the OpenAI-compatible API has its own shape).

    ``service_errors``: the apps' refusals (a ``code``, a ``detail``, maybe ``retry_after``), given by the module that
    mounts the apps' routers, since this layer imports no app."""

    @api.exception_handler(ValidationError)
    def invalid(request, exc: ValidationError):
        errors = _field_errors(exc)
        first = errors[0] if errors else {"field": "request", "message": "is invalid"}
        return render(api, request, 422, "invalid", f"{first['field']}: {first['message']}", errors)

    @api.exception_handler(AuthenticationError)
    def unauthenticated(request, exc):
        response = render(
            api, request, 401, "unauthenticated", "Send a valid API key (Authorization: Bearer …) or sign in.", None
        )
        response["WWW-Authenticate"] = 'Bearer realm="protostar"'
        return response

    @api.exception_handler(Throttled)
    def throttled(request, exc: Throttled):
        return _too_many(api, request, render, int(exc.wait or 1), "Too many requests; try again later.")

    @api.exception_handler(Refused)
    def refused(request, exc: Refused):
        if exc.status == 429:
            return _too_many(api, request, render, exc.retry_after or 1, exc.detail, code=exc.code)
        errors = [{"field": exc.field, "message": exc.detail}] if exc.field else None
        detail = f"{exc.field}: {exc.detail}" if exc.field else exc.detail
        return render(api, request, exc.status, exc.code, detail, errors)

    def service_error(request, exc):
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            # The ask path's admission rules (open answers, quotas, rate): the same refusals as on the socket.
            return _too_many(api, request, render, retry_after, exc.detail, code=exc.code)
        return render(api, request, SERVICE_ERROR_STATUS.get(exc.code, 400), exc.code, exc.detail, None)

    for kind in service_errors:
        api.exception_handler(kind)(service_error)

    @api.exception_handler(Http404)
    def not_found(request, exc):
        return render(api, request, 404, "not_found", "No such object.", None)

    @api.exception_handler(HttpError)
    def http_error(request, exc: HttpError):
        codes = {401: "unauthenticated", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}
        return render(api, request, exc.status_code, codes.get(exc.status_code, "bad_request"), str(exc), None)

    @api.exception_handler(Exception)
    def internal(request, exc):
        logger.exception("API request %s %s failed", request.method, request.path)
        return render(api, request, 500, "internal", "The request could not be processed right now; try again.", None)


def _too_many(api, request, render: Render, retry_after: int, detail: str, *, code: str = "rate_limited"):
    response = render(api, request, 429, code, detail, None)
    response["Retry-After"] = str(max(1, int(retry_after)))
    return response
