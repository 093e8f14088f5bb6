"""Every middleware must run async under daphne: Django runs a sync-only one on the single thread it keeps for sync
code, and then every request (the API's asks and event streams too) waits for the one before it."""

from __future__ import annotations

from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.test import override_settings
from django.utils.module_loading import import_string


def test_every_middleware_is_async_capable():
    sync_only = [path for path in settings.MIDDLEWARE if not getattr(import_string(path), "async_capable", False)]
    assert sync_only == []


def test_the_asgi_handler_builds_an_async_chain_without_adapting_any_middleware(caplog):
    # Django names each adaptation in its debug log, written only with DEBUG on.
    with override_settings(DEBUG=True), caplog.at_level("DEBUG", logger="django.request"):
        ASGIHandler()
    adapted = [record.getMessage() for record in caplog.records if "adapted for middleware" in record.getMessage()]
    assert adapted == []
