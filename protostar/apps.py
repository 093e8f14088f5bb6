from __future__ import annotations

from django.apps import AppConfig


class ProtostarConfig(AppConfig):
    name = "protostar"
    verbose_name = "Protostar"

    def ready(self) -> None:
        from protostar import checks  # noqa: F401  (registers system checks)
