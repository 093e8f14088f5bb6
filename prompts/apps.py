from __future__ import annotations

from django.apps import AppConfig


class PromptsConfig(AppConfig):
    name = "prompts"

    def ready(self) -> None:
        from prompts import checks  # noqa: F401  (registers the shipped-prompts check)
