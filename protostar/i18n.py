"""The interface language outside Django's request cycle (the chat socket): the same choice LocaleMiddleware makes,
from the language cookie the switcher sets, else the browser's Accept-Language."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from django.utils import translation


def language_from_scope(scope: dict[str, Any]) -> str:
    headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope.get("headers", [])}
    request = SimpleNamespace(
        COOKIES=scope.get("cookies") or {},
        META={"HTTP_ACCEPT_LANGUAGE": headers.get("accept-language", "")},
        path_info="/",
    )
    return translation.get_language_from_request(request)
