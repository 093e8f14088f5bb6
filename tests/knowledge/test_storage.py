"""Row layout the search depends on: the vectors and the keyword index column of full-size chunks stay in the row."""

from __future__ import annotations

import importlib
import logging
import uuid
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from pgvector import SparseVector

from knowledge.chunking import chunk_document, sentence_windows
from knowledge.extraction import extract
from knowledge.ingestion import document_ingest
from knowledge.lexical import search_terms_text
from knowledge.models import SPARSE_DIMENSIONS, Chunk, ChunkWindow
from knowledge.services import document_upload
from protostar.llm.base import get_embedder

pytestmark = pytest.mark.django_db(transaction=True)

KOREAN = "정규직 직원의 연차 휴가는 입사 첫해 15일이며, 3년마다 하루씩 늘어납니다. 휴가 신청은 일주일 전에 제출합니다. "
ENGLISH = "Passwords must be at least 14 characters long and are rotated every 180 days by the security team. "


@pytest.fixture(autouse=True)
def _toast_inspection_needs_postgres_17():
    if connection.pg_version < 170000:
        pytest.skip("pg_column_toast_chunk_id() needs PostgreSQL 17")


def _out_of_line(table: str, columns: list[str]) -> dict[str, int]:
    """How many rows of ``table`` keep each column in the TOAST table instead of the row itself."""
    counts = ", ".join(f"count(pg_column_toast_chunk_id({column}))" for column in columns)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*), {counts} FROM {table}")
        total, *outside = cursor.fetchone()
    assert total > 0
    return dict(zip(columns, outside, strict=True))


def _ingest_long_document(monkeypatch, sentence: str) -> None:
    monkeypatch.setattr("knowledge.services.document_ingest_enqueue", lambda *, document_id: None)
    outcome = document_upload(data=(sentence * 40).encode(), filename="long.md")
    document_ingest(document_id=outcome.document.pk)


@pytest.mark.parametrize("sentence", [KOREAN, ENGLISH], ids=["ko", "en"])
def test_full_size_chunks_keep_vectors_and_keywords_in_the_row(monkeypatch, sentence):
    # Read for every candidate of every search: out of line, each costs an index lookup in the TOAST table
    # (the keyword list took twice as long at 100k chunks, see docs/benchmarks.md).
    _ingest_long_document(monkeypatch, sentence)
    chunk_sizes = Chunk.objects.values_list("token_count", flat=True)
    assert max(chunk_sizes) >= 250, "the document should make full-size chunks"
    assert ChunkWindow.objects.exclude(sparse_embedding=None).exists()

    assert _out_of_line("knowledge_chunk", ["embedding", "search_vector"]) == {"embedding": 0, "search_vector": 0}
    assert _out_of_line("knowledge_chunkwindow", ["embedding", "sparse_embedding"]) == {
        "embedding": 0,
        "sparse_embedding": 0,
    }


MIGRATION = "knowledge.migrations.0004_rows_keep_vectors_inline"


def _ingest_with_schema_0003(sentence: str) -> None:
    """What ingestion wrote at migration 0003, through that migration's models (today's have later columns)."""
    apps = MigrationLoader(connection).project_state(("knowledge", "0003_chunk_windows_language")).apps
    old_document, old_chunk, old_window = (
        apps.get_model("knowledge", name) for name in ("Document", "Chunk", "ChunkWindow")
    )
    text = sentence * 40
    document = old_document.objects.create(
        title="long",
        original_filename="long.md",
        file=f"documents/{uuid.uuid4().hex}",
        content_type="text/markdown",
        size=len(text),
        sha256=uuid.uuid4().hex * 2,
        status="ready",
    )
    drafts = chunk_document(
        extract(text.encode(), "text/markdown", max_pages=10, max_chars=10**6),
        target_tokens=settings.CHUNK_TARGET_TOKENS,
        overlap_tokens=settings.CHUNK_OVERLAP_TOKENS,
    )
    embedder = get_embedder()
    for draft, vector in zip(drafts, embedder.embed_passages([d.text for d in drafts]), strict=True):
        chunk = old_chunk.objects.create(
            document_id=document.pk,
            ordinal=draft.ordinal,
            text=draft.text,
            char_start=draft.char_start,
            char_end=draft.char_end,
            token_count=draft.token_count,
            embedding=vector,
            language="ko",
            search_terms=search_terms_text(draft.text),
        )
        spans = sentence_windows(draft.text, target_tokens=settings.SEARCH_WINDOW_TOKENS)
        texts = [draft.text[start:end] for start, end in spans]
        dense, sparse = embedder.embed_passages(texts), embedder.embed_passages_sparse(texts)
        for ordinal, ((start, end), vector_, terms) in enumerate(zip(spans, dense, sparse, strict=True)):
            old_window.objects.create(
                chunk_id=chunk.pk,
                ordinal=ordinal,
                char_start=start,
                char_end=end,
                embedding=vector_,
                sparse_embedding=SparseVector(terms, SPARSE_DIMENSIONS),
            )


@pytest.fixture
def old_row_layout(monkeypatch) -> Iterator[None]:
    """A knowledge base ingested before migration 0004; the test migrates forward, and so does the teardown if the
    test did not get that far (later tests need the whole schema). Going back to 0003 also unapplies other apps'
    migrations that need a later knowledge schema, so the teardown migrates every app."""
    call_command("migrate", "knowledge", "0003", verbosity=0)
    try:
        _ingest_with_schema_0003(KOREAN)
        assert _out_of_line("knowledge_chunk", ["embedding"])["embedding"] > 0
        yield
    finally:
        call_command("migrate", verbosity=0)


def test_the_migration_rewrites_a_small_knowledge_base(old_row_layout):
    call_command("migrate", "knowledge", verbosity=0)
    assert _out_of_line("knowledge_chunk", ["embedding"]) == {"embedding": 0}
    assert _out_of_line("knowledge_chunkwindow", ["sparse_embedding"]) == {"sparse_embedding": 0}


def test_the_migration_leaves_a_large_table_to_the_operator(old_row_layout, monkeypatch, caplog):
    monkeypatch.setattr(importlib.import_module(MIGRATION), "REWRITE_MAX_ROWS", 1)
    with caplog.at_level(logging.WARNING, logger=MIGRATION):
        call_command("migrate", "knowledge", verbosity=0)
    assert _out_of_line("knowledge_chunk", ["embedding"])["embedding"] > 0
    assert "VACUUM FULL knowledge_chunk" in caplog.text
