"""The HTTP APIs, mounted in one place: ``/api/v1/`` (typed, OpenAPI 3.1, docs at ``/api/v1/docs``) and the
OpenAI-compatible ``/v1/`` over our answers. Each domain keeps its routes in its own app (``knowledge/api.py``,
``chat/api.py``, ``chat/openai_api.py``); nothing here but wiring and the shape of errors."""

from __future__ import annotations

from protostar.api.main import api, openai_api

__all__ = ["api", "openai_api"]
