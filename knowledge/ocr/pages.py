"""OCR of a document's image-only pages, in parts of bounded time, each page's result kept as it is read.

Results are stored per page (``OcrPage``, tied to the file's sha256), so a part that runs out of time, a re-run
job or a reprocess picks up where the last one stopped. Progress counts pages read (``progress_stage="ocr"``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.conf import settings

from knowledge.models import Document, OcrPage
from knowledge.ocr import OcrFailed, get_ocr_engine
from knowledge.ocr.render import open_pdf, render_page_png
from knowledge.services import document_record_ocr, document_report_progress

logger = logging.getLogger(__name__)


class OcrContinues(Exception):
    """This part's time is used up and pages remain: the ingestion continues in a new job."""


def ocr_page_reader(*, document: Document, data: bytes) -> Callable[[list[int]], dict[int, str]]:
    """A ``PageReader`` for ``extract``: reads the pages not read yet, raising ``OcrContinues`` when time is up."""
    started = time.monotonic()

    def read(numbers: list[int]) -> dict[int, str]:
        results = _stored_results(document, numbers)
        pending = [number for number in numbers if number not in results]
        _report(document, results, numbers)
        if pending:
            _read_pending(document, data, pending, results, numbers, started)
        read_pages = sorted(number for number, row in results.items() if row.text)
        confidences = [row.confidence for row in results.values() if row.confidence is not None]
        mean = round(sum(confidences) / len(confidences), 1) if confidences else None
        document_record_ocr(document_id=document.pk, pages=read_pages, confidence=mean)
        return {number: row.text for number, row in results.items()}

    return read


def _read_pending(
    document: Document, data: bytes, pending: list[int], results: dict, numbers: list[int], started: float
) -> None:
    pdf = open_pdf(data)
    try:
        for index, number in enumerate(pending):
            # Always read at least one page per part, so every part makes progress.
            if index and _out_of_time(started):
                logger.info("document %s: OCR continues in a new job, %s pages left", document.pk, len(pending) - index)
                raise OcrContinues(document.pk)
            results[number] = _read_page(document, pdf, number)
            _report(document, results, numbers)
    finally:
        pdf.close()


def _out_of_time(started: float) -> bool:
    # Leave room for one more page at its worst within the part's budget.
    return time.monotonic() - started + settings.OCR_PAGE_TIMEOUT > settings.OCR_PART_SECONDS


def _stored_results(document: Document, numbers: list[int]) -> dict[int, OcrPage]:
    # Results of an earlier version of the file are stale.
    OcrPage.objects.filter(document_id=document.pk).exclude(file_sha256=document.sha256).delete()
    rows = OcrPage.objects.filter(document_id=document.pk, number__in=numbers)
    return {row.number: row for row in rows}


def _report(document: Document, results: dict, numbers: list[int]) -> None:
    document_report_progress(document_id=document.pk, done=len(results), total=len(numbers), stage="ocr")


def _read_page(document: Document, pdf, number: int) -> OcrPage:
    engine = get_ocr_engine()
    started = time.monotonic()
    text, confidence, error = "", None, ""
    try:
        image = render_page_png(pdf, number, dpi=settings.OCR_DPI, max_pixels=settings.OCR_MAX_PIXELS)
        result = engine.read(image, languages=settings.OCR_LANGUAGES, timeout=settings.OCR_PAGE_TIMEOUT)
        text, confidence = result.text, result.confidence
    except OcrFailed as exc:
        logger.warning("document %s page %s: %s", document.pk, number, exc)
        error = str(exc)[:300]
    row, _ = OcrPage.objects.update_or_create(
        document_id=document.pk,
        number=number,
        defaults={
            "file_sha256": document.sha256,
            "text": text,
            "confidence": confidence,
            "engine": engine.name,
            "error": error,
            "seconds": round(time.monotonic() - started, 3),
        },
    )
    return row
