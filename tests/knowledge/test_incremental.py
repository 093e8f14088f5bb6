"""Incremental re-ingestion: only chunks (and sentence windows) whose text changed are embedded again.

Real PostgreSQL/pgvector and the bundled embedder; the embedder is wrapped only to count the texts it embeds.
"""

from __future__ import annotations

import random
import threading

import pytest
from django.db import connections
from django.test import override_settings

from knowledge import ingestion
from knowledge.models import Chunk, ChunkWindow, Document, Source
from knowledge.search import search_chunks
from knowledge.services import document_reprocess, document_upload
from knowledge.sources.services import source_sync
from tests.knowledge import pdf_factory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(900)]

EN = "pump filter valve pressure inspection report budget contract backup server network invoice".split()
KO = "점검 일정 장비 필터 압력 밸브 보고서 예산 승인 계약 직원 교육 보안 백업 복구".split()


class CountingEmbedder:
    """The real embedder, counting the passages it is asked to embed (dense and sparse)."""

    def __init__(self, real) -> None:
        self.real = real
        self.dense = 0
        self.sparse = 0

    def __getattr__(self, name):
        return getattr(self.real, name)

    def embed_passages(self, texts):
        self.dense += len(texts)
        return self.real.embed_passages(texts)

    def embed_passages_sparse(self, texts):
        self.sparse += len(texts)
        return self.real.embed_passages_sparse(texts)


@pytest.fixture
def counting(monkeypatch) -> CountingEmbedder:
    real = ingestion.get_embedder()
    counter = CountingEmbedder(real)
    real_sparse = ingestion.get_sparse_embedder
    monkeypatch.setattr(ingestion, "get_embedder", lambda: counter)
    # Asked at call time: a test's settings decide whether the sparse list is on.
    monkeypatch.setattr(ingestion, "get_sparse_embedder", lambda: counter if real_sparse() is not None else None)
    return counter


@pytest.fixture
def queued(monkeypatch) -> list[int]:
    ids: list[int] = []
    monkeypatch.setattr("knowledge.services.document_ingest_enqueue", lambda *, document_id: ids.append(document_id))
    return ids


def manual_pages(count: int) -> list[str]:
    rng = random.Random(21)
    pages = []
    for number in range(1, count + 1):
        words = KO if number % 2 else EN
        pages.append(
            f"Manual page {number}\n" + " ".join(rng.choices(words, k=5)) + (" 합니다." if words is KO else ".")
        )
    return pages


# Short pages keep the 300-page document quick to embed on a shared test machine (~2 pages a chunk); the window and
# sparse lists are off here (their reuse is tested below), so every passage embedded is a chunk.
@override_settings(
    CHUNK_TARGET_TOKENS=48,
    CHUNK_OVERLAP_TOKENS=0,
    SEARCH_WINDOW_WEIGHT=0,
    SEARCH_SPARSE_WEIGHT=0,
    SOURCE_FOLDER_ROOTS=["/"],
)
def test_one_changed_page_out_of_300_re_embeds_at_most_two_percent_of_the_chunks(tmp_path, queued, counting):
    pages = manual_pages(300)
    path = tmp_path / "manual.pdf"
    path.write_bytes(pdf_factory.make_pdf(pages))
    source = Source.objects.create(name="Manuals", kind=Source.Kind.FOLDER, location=str(tmp_path))
    source_sync(source_id=source.pk)
    document = ingestion.document_ingest(document_id=queued.pop())
    assert document.status == Document.Status.READY, document.error
    total = document.chunk_count
    assert total >= 100
    assert counting.dense == total, "the first ingestion embeds every chunk"
    before = {c.pk: (c.text, c.ordinal) for c in Chunk.objects.filter(document=document)}

    pages[149] = pages[149].replace("Manual page 150", "Manual page 150 (revised: the 밸브 torque is now 40 Nm)")
    path.write_bytes(pdf_factory.make_pdf(pages))
    run = source_sync(source_id=source.pk)
    assert run.updated == 1
    counting.dense = counting.sparse = 0
    document = ingestion.document_ingest(document_id=queued.pop())
    assert document.status == Document.Status.READY, document.error
    after = {c.pk: (c.text, c.ordinal) for c in Chunk.objects.filter(document=document)}
    new_ids = set(after) - set(before)
    assert 1 <= counting.dense <= 0.02 * total, f"{counting.dense} of {total} chunks embedded again"
    assert len(new_ids) == counting.dense, "only the new rows were embedded"
    kept = set(after) & set(before)
    assert len(kept) == document.chunk_count - len(new_ids)
    assert all(after[pk][0] == before[pk][0] for pk in kept), "kept chunks keep their ids and text"
    assert sorted(ordinal for _, ordinal in after.values()) == list(range(document.chunk_count))
    assert any("40 Nm" in after[pk][0] for pk in new_ids)
    assert document.page_count == 300


GUIDE = (
    "# 점검 안내\n\n냉각 장치는 매달 첫째 주 월요일에 점검합니다.\n\n"
    "## Pump\n\nThe XR-7710 pump is inspected every 90 days.\n\n"
    "## Filter\n\nReplace the filter cartridge when the pressure drops below 2 bar.\n"
)


def test_reprocessing_an_unchanged_document_embeds_nothing(queued, counting, admin_user):
    outcome = document_upload(data=GUIDE.encode(), filename="guide.md")
    document = ingestion.document_ingest(document_id=outcome.document.pk)
    ids = sorted(Chunk.objects.filter(document=document).values_list("pk", flat=True))
    windows = sorted(ChunkWindow.objects.filter(chunk__document=document).values_list("pk", flat=True))
    assert windows and counting.dense > len(ids)
    counting.dense = counting.sparse = 0
    document_reprocess(document=document)
    document = ingestion.document_ingest(document_id=outcome.document.pk)
    assert document.status == Document.Status.READY
    assert (counting.dense, counting.sparse) == (0, 0)
    assert sorted(Chunk.objects.filter(document=document).values_list("pk", flat=True)) == ids
    assert sorted(ChunkWindow.objects.filter(chunk__document=document).values_list("pk", flat=True)) == windows
    assert search_chunks(query="냉각 장치 점검", user=admin_user, k=1)[0].document_id == document.pk


@override_settings(SOURCE_FOLDER_ROOTS=["/"])
def test_a_changed_section_re_embeds_only_its_chunk_and_the_windows_whose_text_changed(tmp_path, queued, counting):
    (tmp_path / "guide.md").write_text(GUIDE)
    source = Source.objects.create(name="Guides", kind=Source.Kind.FOLDER, location=str(tmp_path))
    source_sync(source_id=source.pk)
    document = ingestion.document_ingest(document_id=queued.pop())
    before = dict(Chunk.objects.filter(document=document).values_list("section_path", "pk"))
    (tmp_path / "guide.md").write_text(GUIDE.replace("90 days", "60 days. Log each inspection"))
    source_sync(source_id=source.pk)
    counting.dense = counting.sparse = 0
    document = ingestion.document_ingest(document_id=queued.pop())
    after = dict(Chunk.objects.filter(document=document).values_list("section_path", "pk"))
    changed = {section for section in after if after[section] != before.get(section)}
    assert changed == {"점검 안내 › Pump"}, "only the edited section's chunk is new"
    # One chunk and its one window (a short section is a single window); the sparse list embeds that window.
    assert counting.dense == 2 and counting.sparse in (0, 1)
    window = ChunkWindow.objects.get(chunk_id=after["점검 안내 › Pump"])
    assert "60 days" in Chunk.objects.get(pk=window.chunk_id).text[window.char_start : window.char_end]


def test_searchers_see_the_old_chunk_set_or_the_new_one_never_a_mix(tmp_path, queued, admin_user):
    old = ["Valve torque table: the old torque is 30 Nm for every flange. " * 3 + f"Section {n}." for n in range(8)]
    new = [page.replace("old torque is 30 Nm", "new torque is 45 Nm") for page in old]
    (tmp_path / "torque.pdf").write_bytes(pdf_factory.make_pdf(old))
    source = Source.objects.create(name="Torque", kind=Source.Kind.FOLDER, location=str(tmp_path))
    with override_settings(SOURCE_FOLDER_ROOTS=[str(tmp_path)]):
        source_sync(source_id=source.pk)
        document = ingestion.document_ingest(document_id=queued.pop())
        (tmp_path / "torque.pdf").write_bytes(pdf_factory.make_pdf(new))
        source_sync(source_id=source.pk)
    seen: list[tuple[bool, bool]] = []
    stop = threading.Event()

    def watch() -> None:
        try:
            while not stop.is_set():
                texts = list(Chunk.objects.filter(document_id=document.pk).values_list("text", flat=True))
                seen.append((any("30 Nm" in t for t in texts), any("45 Nm" in t for t in texts)))
        finally:
            connections.close_all()

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        document = ingestion.document_ingest(document_id=queued.pop())
    finally:
        stop.set()
        watcher.join(timeout=30)
    assert document.status == Document.Status.READY
    assert (seen and (False, True) in seen) or seen[-1] == (True, False)
    assert (True, True) not in seen and (False, False) not in seen, "never a mix, never empty"
    texts = "\n".join(hit.text for hit in search_chunks(query="valve torque", user=admin_user, k=3))
    assert "45 Nm" in texts and "30 Nm" not in texts
