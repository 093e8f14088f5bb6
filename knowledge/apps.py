from __future__ import annotations

from django.apps import AppConfig


class KnowledgeConfig(AppConfig):
    name = "knowledge"
    verbose_name = "Knowledge base"

    def ready(self) -> None:
        from knowledge import checks  # noqa: F401  (registers system checks)
        from knowledge.ocr import connect_signals

        connect_signals()
