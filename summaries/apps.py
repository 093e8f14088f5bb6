from __future__ import annotations

from django.apps import AppConfig


class SummariesConfig(AppConfig):
    name = "summaries"
