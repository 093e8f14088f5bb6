"""OCR for PDF pages that have no text layer: one small Protocol, the engine chosen by ``OCR_ENGINE``.

``knowledge.ingestion`` decides which pages need it and keeps the results (``OcrPage``); this package only turns a
rendered page into text with a confidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string


@dataclass(frozen=True)
class OcrResult:
    text: str
    # Mean word confidence, 0–100; None when the engine recognised no word.
    confidence: float | None


class OcrFailed(Exception):
    """The engine could not read a page (time limit, crash); ``str()`` is a reason staff can read."""


class OcrEngine(Protocol):
    name: str

    def read(self, image_png: bytes, *, languages: str, timeout: float) -> OcrResult:
        """Text of one page image; raises ``OcrFailed`` when the page cannot be read within ``timeout`` seconds."""
        ...


@cache
def get_ocr_engine() -> OcrEngine:
    return import_string(settings.OCR_ENGINE)()


def _on_setting_changed(*, setting: str, **kwargs) -> None:
    if setting == "OCR_ENGINE":
        get_ocr_engine.cache_clear()


def connect_signals() -> None:
    from django.core.signals import setting_changed

    setting_changed.connect(_on_setting_changed, dispatch_uid="knowledge.ocr")
