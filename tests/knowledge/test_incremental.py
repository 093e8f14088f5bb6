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
    sparse = ingestion.get_sparse_embedder()
    monkeypatch.setattr(ingestion, "get_embedder", lambda: counter)
    monkeypatch.setattr(ingestion, "get_sparse_embedder", lambda: counter if sparse is not None else None)
    return counter


@pytest.fixture
def queued(monkeypatch) -> list[int]:
    ids: list[int] = []
    monkeypatch.setattr("knowledge.services._enqueue_ingest_on_commit", ids.append)
    return ids


def manual_pages(count: int) -> list[str]:
    rng = random.Random(21)
    pages = []
    for number in range(1, count + 1):
        words = KO if number % 2 else EN
        lines = [" ".join(rng.choices(words, k=6)) + (" 합니다." if words is KO else ".") for _ in range(3)]
        pages.append(f"Manual page {number}\n" + "\n".join(lines))
    return pages


# Small chunks keep the 300-page document quick to embed on a test machine while giving it ~300 chunks.
@override_settings(CHUNK_TARGET_TOKENS=60, CHUNK_OVERLAP_TOKENS=12, SOURCE_FOLDER_ROOTS=["/"])
def test_one_changed_page_out_of_300_re_embeds_at_most_two_percent_of_the_chunks(tmp_path, queued, counting):
    pages = manual_pages(300)
    path = tmp_path / "manual.pdf"
    path.write_bytes(pdf_factory.make_pdf(pages))
    source = Source.objects.create(name="Manuals", kind=Source.Kind.FOLDER, location=str(tmp_path))
    source_sync(source_id=source.pk)
    document = ingestion.document_ingest(document_id=queued.pop())
    assert document.status == Document.Status.READY, document.error
    total = document.chunk_count
    assert total >= 250
    assert counting.dense > total, "the first ingestion embeds every chunk and its windows"
    before = {c.pk: (c.text, c.ordinal) for c in Chunk.objects.filter(document=document)}
    windows_before = set(ChunkWindow.objects.filter(chunk__document=document).values_list("pk", flat=True))

    pages[149] = pages[149].replace("Manual page 150", "Manual page 150 (revised: the 밸브 torque is now 40 Nm)")
    path.write_bytes(pdf_factory.make_pdf(pages))
    run = source_sync(source_id=source.pk)
    assert run.updated == 1
    counting.dense = counting.sparse = 0
    document = ingestion.document_ingest(document_id=queued.pop())
    assert document.status == Document.Status.READY, document.error
    after = {c.pk: (c.text, c.ordinal) for c in Chunk.objects.filter(document=document)}
    new_ids = set(after) - set(before)
    assert 1 <= len(new_ids) <= 0.02 * total, f"{len(new_ids)} of {total} chunks re-embedded"
    assert counting.dense <= 0.02 * (total + len(windows_before)), "at most 2% of the passages embedded again"
    kept = set(after) & set(before)
    assert len(kept) == document.chunk_count - len(new_ids)
    assert all(after[pk][0] == before[pk][0] for pk in kept), "kept chunks keep their ids and text"
    assert sorted(ordinal for _, ordinal in after.values()) == list(range(document.chunk_count))
    assert any("40 Nm" in after[pk][0] for pk in new_ids)
    windows_after = set(ChunkWindow.objects.filter(chunk__document=document).values_list("pk", flat=True))
    assert len(windows_before & windows_after) >= 0.95 * len(windows_before), "kept chunks keep their windows"
    assert document.page_count == 300


def test_reprocessing_an_unchanged_document_embeds_nothing(queued, counting, admin_user):
    text = (
        "# 점검 안내\n\n냉각 장치는 매달 첫째 주 월요일에 점검합니다.\n\n"
        "## Pump\n\nThe XR-7710 pump is inspected every 90 days.\n"
    )
    outcome = document_upload(data=text.encode(), filename="guide.md")
    document = ingestion.document_ingest(document_id=outcome.document.pk)
    ids = sorted(Chunk.objects.filter(document=document).values_list("pk", flat=True))
    counting.dense = counting.sparse = 0
    document_reprocess(document=document)
    document = ingestion.document_ingest(document_id=outcome.document.pk)
    assert document.status == Document.Status.READY
    assert (counting.dense, counting.sparse) == (0, 0)
    assert sorted(Chunk.objects.filter(document=document).values_list("pk", flat=True)) == ids
    assert search_chunks(query="냉각 장치 점검", user=admin_user, k=1)[0].document_id == document.pk


def test_searchers_see_the_old_chunk_set_or_the_new_one_never_a_mix(tmp_path, queued, admin_user):
    old = ["Valve torque table: the old torque is 30 Nm for every flange. " * 3 + f"Section {n}." for n in range(40)]
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
