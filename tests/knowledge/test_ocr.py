"""OCR of image-only PDF pages: real Tesseract (kor+eng), real PostgreSQL/pgvector, the bundled embedder."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest
from django.test import override_settings
from pypdf import PdfReader, PdfWriter

from knowledge.ingestion import document_ingest
from knowledge.models import Document, OcrPage
from knowledge.ocr import OcrFailed
from knowledge.ocr.tesseract import TesseractEngine
from knowledge.search import search_chunks
from knowledge.services import document_upload
from tests.knowledge import pdf_factory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]

TEXT_PAGE = "Protostar facilities handbook. This page has a real text layer and needs no OCR."
KOREAN_SCAN = (
    "보일러실 안전 점검 기록\n"
    "보일러 압력 밸브는 매주 화요일 오전에 점검합니다.\n"
    "점검 결과는 시설관리팀 게시판에 기록합니다.\n"
    "비상 차단 스위치는 보일러실 입구 왼쪽에 있습니다."
)
ENGLISH_SCAN = (
    "Signed service contract, scanned copy\n"
    "The elevator maintenance contract with Hanbit Lifts runs until March 2029.\n"
    "Emergency call-outs are answered within four hours.\n"
    "The annual fee is paid in two instalments."
)


@pytest.fixture(autouse=True)
def _in_process_ingestion(monkeypatch):
    queued: list[int] = []
    monkeypatch.setattr("knowledge.services.document_ingest_enqueue", lambda *, document_id: queued.append(document_id))
    # The next part of a long ingestion goes through its own job kind.
    monkeypatch.setattr("knowledge.services.INGEST_PART_JOB", SimpleNamespace(enqueue=queued.append))
    return queued


def _merged(*parts: bytes) -> bytes:
    writer = PdfWriter()
    for part in parts:
        for page in PdfReader(io.BytesIO(part)).pages:
            writer.add_page(page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _best_hit(query: str, user, document: Document) -> tuple[int, int, str]:
    hit = next(hit for hit in search_chunks(query=query, user=user, k=3) if hit.document_id == document.pk)
    return hit.page_start, hit.page_end, hit.text


# Chunks of at most a page each, so a hit's page numbers say which page it came from.
@override_settings(CHUNK_TARGET_TOKENS=40, CHUNK_OVERLAP_TOKENS=0)
def test_scanned_korean_and_english_pages_are_found_by_search_with_their_page_numbers(admin_user):
    data = _merged(pdf_factory.make_pdf([TEXT_PAGE]), pdf_factory.make_scanned_pdf([KOREAN_SCAN, ENGLISH_SCAN]))
    outcome = document_upload(data=data, filename="facilities.pdf")
    document = document_ingest(document_id=outcome.document.pk)
    assert document.status == Document.Status.READY, document.error
    assert document.page_count == 3
    assert document.ocr_pages == [2, 3], "only the pages without a text layer are read by OCR"
    assert document.ocr_confidence is not None and document.ocr_confidence > 60
    rows = {row.number: row for row in OcrPage.objects.filter(document=document)}
    assert set(rows) == {2, 3} and all(row.engine == "tesseract" and not row.error for row in rows.values())
    assert "압력 밸브" in rows[2].text and "elevator maintenance contract" in rows[3].text
    first, last, text = _best_hit("보일러 압력 밸브는 언제 점검하나요?", admin_user, document)
    assert (first, last) == (2, 2) and "압력 밸브" in text
    first, last, text = _best_hit("elevator maintenance contract Hanbit Lifts", admin_user, document)
    assert (first, last) == (3, 3) and "Hanbit Lifts" in text
    first, last, text = _best_hit("facilities handbook real text layer", admin_user, document)
    assert (first, last) == (1, 1) and "real text layer" in text


@override_settings(OCR_PART_SECONDS=1, OCR_PAGE_TIMEOUT=60)
def test_many_scanned_pages_are_read_in_parts_that_report_progress_and_resume(_in_process_ingestion):
    pages = [f"{KOREAN_SCAN}\n1쪽", f"{ENGLISH_SCAN}\nPage 2", f"{KOREAN_SCAN}\n3쪽"]
    outcome = document_upload(data=pdf_factory.make_scanned_pdf(pages), filename="archive.pdf")
    document_id = outcome.document.pk
    parts = 0
    while True:
        document = document_ingest(document_id=document_id)
        parts += 1
        if document.status != Document.Status.PROCESSING:
            break
        # A part that ran out of time left its progress and queued the next part.
        assert document.progress_stage == "ocr" and document.progress_total == 3
        assert document.progress_done == OcrPage.objects.filter(document_id=document_id).count() == parts
        assert _in_process_ingestion[-1] == document_id
        assert parts < 5
    assert parts == 3, "each part reads at least one page, and no part exceeds its time budget"
    assert document.status == Document.Status.READY, document.error
    assert document.ocr_pages == [1, 2, 3] and document.progress_stage == ""


@override_settings(OCR_ENABLED=False)
def test_with_ocr_turned_off_a_scanned_pdf_fails_with_a_clear_reason():
    outcome = document_upload(data=pdf_factory.make_scanned_pdf([ENGLISH_SCAN]), filename="scan.pdf")
    assert document_ingest(document_id=outcome.document.pk) is None
    document = Document.objects.get(pk=outcome.document.pk)
    assert document.status == Document.Status.FAILED
    assert document.error == (
        "No text could be extracted: the PDF seems to be scanned images and OCR is turned off on this server."
    )
    assert not OcrPage.objects.exists()


def test_a_page_over_the_time_limit_stops_the_engine_with_a_readable_reason():
    from knowledge.ocr.render import open_pdf, render_page_png

    pdf = open_pdf(pdf_factory.make_scanned_pdf([KOREAN_SCAN * 3]))
    image = render_page_png(pdf, 1, dpi=300, max_pixels=40_000_000)
    with pytest.raises(OcrFailed, match=r"OCR stopped after 0.05 s \(the per-page limit\)"):
        TesseractEngine().read(image, languages="kor+eng", timeout=0.05)
