"""The two API instances and the routers they mount: the HTTP API's routing, so the one module of ``protostar`` that
imports the apps (declared in the layer contract in pyproject.toml, like ``protostar.asgi``)."""

from __future__ import annotations

from typing import Any

from ninja import NinjaAPI, Swagger

from accounts.auth import ApiKeyAuth, BrowserSessionAuth, signed_in_or_key
from chat import events
from chat.api import router as chat_router
from chat.openai_api import router as openai_router
from chat.services import ChatError
from knowledge.api import router as documents_router
from knowledge.api import search_router
from protostar.api import errors

DOCS_SETTINGS = {
    # Swagger UI would otherwise send the spec to an outside validator for its badge: the service works offline.
    "validatorUrl": None,
    "persistAuthorization": False,
}


# One server-sent event as a client parses it (the fields of the event's lines; ``data`` holds the JSON object).
SSE_ITEM_SCHEMA = {
    "type": "object",
    "description": "One server-sent event: `event` is the type, `id` the seq, `data` the event as JSON.",
    "required": ["event", "data"],
    "properties": {
        "event": {"type": "string", "enum": sorted(events.STREAM_EVENT_TYPES)},
        "id": {"type": "string", "pattern": "^[0-9]+$"},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {"$ref": "#/components/schemas/AnswerEvent"},
        },
    },
}


class ProtostarAPI(NinjaAPI):
    def get_openapi_schema(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The generated document, plus the answer events the SSE endpoint streams (not a JSON response, so not
        collected from the routes)."""
        schema = super().get_openapi_schema(*args, **kwargs)
        answer_events = events.ANSWER_EVENT.json_schema(ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(answer_events.pop("$defs", {}))
        components["AnswerEvent"] = answer_events
        components["AnswerEventStreamItem"] = SSE_ITEM_SCHEMA
        return schema


api = ProtostarAPI(
    title="Protostar API",
    version="1",
    description="Documents, search and chat over HTTP. Authenticate with `Authorization: Bearer <API key>` (create "
    "keys on your account page) or, from the browser, the signed-in session with its CSRF token.",
    urls_namespace="api",
    auth=[ApiKeyAuth(), BrowserSessionAuth()],
    docs=Swagger(settings=DOCS_SETTINGS),
    docs_url="/docs",
    openapi_url="/openapi.json",
    docs_decorator=signed_in_or_key,
)
errors.install(api, service_errors=(ChatError,))


def _openai_error(api_: NinjaAPI, request, status: int, code: str, detail: str, fields=None):
    kind = {401: "authentication_error", 403: "permission_error", 404: "not_found_error", 429: "rate_limit_error"}
    body = {
        "error": {
            "message": detail,
            "type": kind.get(status, "invalid_request_error" if status < 500 else "api_error"),
            "code": code,
            "param": fields[0]["field"] if fields else None,
        }
    }
    return api_.create_response(request, body, status=status)


openai_api = NinjaAPI(
    title="Protostar OpenAI-compatible API",
    version="1",
    urls_namespace="openai",
    auth=[ApiKeyAuth()],
    docs_url=None,
    openapi_url="/openapi.json",
    docs_decorator=signed_in_or_key,
)
errors.install(openai_api, render=_openai_error, service_errors=(ChatError,))


api.add_router("/documents", documents_router)
api.add_router("/search", search_router)
api.add_router("", chat_router)
openai_api.add_router("", openai_router)
