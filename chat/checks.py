"""Refuse to start when a chat seam names a class that cannot be imported (a typo would otherwise fail each answer)."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, register
from django.utils.module_loading import import_string

DOTTED_PATH_SETTINGS = ("CHAT_MODEL_BACKEND", "CHAT_QUERY_REWRITER", "SUMMARIZER_BACKEND", "MEMORY_TURN_SOURCE")


@register()
def check_chat_backends(app_configs, **kwargs) -> list[Error]:
    errors = []
    for index, name in enumerate(DOTTED_PATH_SETTINGS, start=1):
        try:
            import_string(getattr(settings, name))
        except ImportError as exc:
            errors.append(Error(f"{name} cannot be imported: {exc}", id=f"chat.E00{index}"))
    return errors
