"""The ingestion pipeline: stored file → text → chunks → embeddings → one atomic swap of the chunk set."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

from django.conf import settings
from pgvector import SparseVector

from knowledge.chunking import ChunkDraft, chunk_document, sentence_windows
from knowledge.extraction import DocumentRejected, extract
from knowledge.lexical import search_terms_text
from knowledge.models import SPARSE_DIMENSIONS, Chunk, ChunkWindow, Document
from knowledge.services import chunks_replace, document_claim, document_mark_failed, document_report_progress
from protostar.llm.base import Embedder, SparseEmbedder
from protostar.llm.registry import get_embedder, get_sparse_embedder
from protostar.tokens import detect_language

logger = logging.getLogger(__name__)
SECTION_SEPARATOR = " › "


def document_ingest(*, document_id: int) -> Document | None:
    """Process one document. Safe to run twice: a document that is gone, ready or failed is left alone."""
    document = document_claim(document_id=document_id)
    if document is None:
        return None
    if document.attempt_count > settings.INGEST_MAX_ATTEMPTS:
        runs = document.attempt_count - 1
        reason = (
            f"Processing was interrupted {runs} times (the worker stopped, or a service was unavailable). "
            "Reprocess the document to try again."
        )
        document_mark_failed(document_id=document.pk, reason=reason)
        return None
    data = _read_stored_bytes(document)
    try:
        extracted = extract(
            data, document.content_type, max_pages=settings.PDF_MAX_PAGES, max_chars=settings.EXTRACT_MAX_CHARS
        )
        drafts = chunk_document(
            extracted, target_tokens=settings.CHUNK_TARGET_TOKENS, overlap_tokens=settings.CHUNK_OVERLAP_TOKENS
        )
    except DocumentRejected as exc:
        document_mark_failed(document_id=document.pk, reason=str(exc))
        return None
    if not drafts:
        document_mark_failed(document_id=document.pk, reason="No text could be extracted from this file.")
        return None
    chunks, windows = _embed(document, drafts)
    chunks_replace(
        document=document,
        chunks=chunks,
        windows=windows,
        page_count=extracted.page_count,
        embedding_model=get_embedder().model_name,
    )
    document.refresh_from_db()
    return document


def batched(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _read_stored_bytes(document: Document) -> bytes:
    with document.file.open("rb") as handle:
        return handle.read()


def passage_text(document: Document, draft: ChunkDraft) -> str:
    # The title and heading path give the embedder context a chunk's own words often lack.
    heading = SECTION_SEPARATOR.join(draft.section_path)
    return "\n".join(part for part in (document.title, heading, draft.text) if part)


def _embed(document: Document, drafts: list[ChunkDraft]) -> tuple[list[Chunk], list[list[ChunkWindow]]]:
    """Chunk rows with their vectors, and each chunk's sentence windows with theirs."""
    embedder = get_embedder()
    sparse = get_sparse_embedder()
    # Windows carry the sparse vectors too, so they are needed when either of their lists is on.
    with_windows = settings.SEARCH_WINDOW_WEIGHT > 0 or sparse is not None
    total = len(drafts)
    document_report_progress(document_id=document.pk, done=0, total=total)
    chunks: list[Chunk] = []
    windows: list[list[ChunkWindow]] = []
    for batch in batched(drafts, max(1, settings.EMBEDDING_BATCH_SIZE)):
        texts = [passage_text(document, draft) for draft in batch]
        vectors = embedder.embed_passages(texts)
        for draft, text, vector in zip(batch, texts, vectors, strict=True):
            chunks.append(_chunk_row(document, draft, text, vector))
        if with_windows:
            windows += _embed_windows(document, batch, embedder, sparse)
        else:
            windows += [[] for _ in batch]
        document_report_progress(document_id=document.pk, done=len(chunks), total=total)
    return chunks, windows


def _embed_windows(
    document: Document, drafts: Sequence[ChunkDraft], embedder: Embedder, sparse: SparseEmbedder | None
) -> list[list[ChunkWindow]]:
    spans = [sentence_windows(draft.text, target_tokens=settings.SEARCH_WINDOW_TOKENS) for draft in drafts]
    texts = [
        window_text(document, draft, draft.text[start:end])
        for draft, draft_spans in zip(drafts, spans, strict=True)
        for start, end in draft_spans
    ]
    vectors = iter(embedder.embed_passages(texts))
    sparse_vectors = iter(_sparse_rows(sparse, texts))
    return [
        [
            ChunkWindow(
                ordinal=ordinal,
                char_start=start,
                char_end=end,
                embedding=next(vectors),
                sparse_embedding=next(sparse_vectors),
            )
            for ordinal, (start, end) in enumerate(draft_spans)
        ]
        for draft_spans in spans
    ]


def window_text(document: Document, draft: ChunkDraft, text: str) -> str:
    # A few sentences say even less about their context than a chunk does: title and headings go in front.
    heading = SECTION_SEPARATOR.join((document.title, *draft.section_path))
    return f"{heading}\n{text}"


def _sparse_rows(sparse: SparseEmbedder | None, texts: list[str]) -> list[SparseVector | None]:
    if sparse is None:
        return [None] * len(texts)
    return [SparseVector(terms, SPARSE_DIMENSIONS) for terms in sparse.embed_passages_sparse(texts)]


def _chunk_row(document: Document, draft: ChunkDraft, embedded_text: str, vector) -> Chunk:
    return Chunk(
        document_id=document.pk,
        ordinal=draft.ordinal,
        text=draft.text,
        page_start=draft.page_start,
        page_end=draft.page_end,
        section_path=SECTION_SEPARATOR.join(draft.section_path)[:500],
        char_start=draft.char_start,
        char_end=draft.char_end,
        token_count=draft.token_count,
        embedding=vector,
        language=detect_language(draft.text),
        search_terms=search_terms_text(embedded_text),
    )
