"""The ingestion pipeline: stored file → text (OCR for scanned pages) → chunks → embeddings → one atomic swap.

A re-ingestion embeds only the chunks (and sentence windows) whose text changed (``knowledge.incremental``).
OCR runs in parts of bounded time: a part that runs out of time queues the next one (``knowledge.ocr.pages``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

from django.conf import settings
from pgvector import SparseVector

from knowledge.chunking import ChunkDraft, chunk_document, sentence_windows
from knowledge.extraction import DocumentRejected, extract
from knowledge.incremental import ReusePlan, content_hash, embedding_fingerprint, plan_reuse
from knowledge.lexical import search_terms_text
from knowledge.models import SPARSE_DIMENSIONS, Chunk, ChunkWindow, Document
from knowledge.ocr.pages import OcrContinues, ocr_page_reader
from knowledge.services import (
    ChunkSetChanged,
    chunks_replace,
    document_claim,
    document_continue,
    document_mark_failed,
    document_report_progress,
)
from protostar.llm.base import Embedder, SparseEmbedder, get_embedder, get_sparse_embedder
from protostar.text import detect_language

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
    ocr = ocr_page_reader(document=document, data=data) if settings.OCR_ENABLED else None
    try:
        extracted = extract(
            data,
            document.content_type,
            max_pages=settings.PDF_MAX_PAGES,
            max_chars=settings.EXTRACT_MAX_CHARS,
            ocr=ocr,
        )
        drafts = chunk_document(
            extracted, target_tokens=settings.CHUNK_TARGET_TOKENS, overlap_tokens=settings.CHUNK_OVERLAP_TOKENS
        )
    except OcrContinues:
        document_continue(document_id=document.pk)
        document.refresh_from_db()
        return document
    except DocumentRejected as exc:
        document_mark_failed(document_id=document.pk, reason=str(exc))
        return None
    if not drafts:
        document_mark_failed(document_id=document.pk, reason="No text could be extracted from this file.")
        return None
    try:
        _embed_and_swap(document, drafts, extracted.page_count)
    except ChunkSetChanged:
        # A concurrent run of this job swapped the chunk set first: plan again against what it stored.
        _embed_and_swap(document, drafts, extracted.page_count)
    document.refresh_from_db()
    return document


def _embed_and_swap(document: Document, drafts: list[ChunkDraft], page_count: int | None) -> None:
    embedder = get_embedder()
    sparse = get_sparse_embedder()
    # Windows carry the sparse vectors too, so they are needed when either of their lists is on.
    with_windows = settings.SEARCH_WINDOW_WEIGHT > 0 or sparse is not None
    fingerprint = embedding_fingerprint(embedder, sparse, with_windows=with_windows)
    hashes = [content_hash(fingerprint, passage_text(document, draft)) for draft in drafts]
    plan = plan_reuse(
        document, drafts, hashes, reuse=document.embedding_model == embedder.model_name, with_windows=with_windows
    )
    by_ordinal = dict(zip((draft.ordinal for draft in drafts), hashes, strict=True))
    chunks, windows = _embed(document, plan, by_ordinal, fingerprint, with_windows=with_windows, total=len(drafts))
    chunks_replace(
        document=document,
        chunks=chunks,
        windows=windows,
        kept=[_kept_row(document, chunk_id, draft) for chunk_id, draft in plan.kept],
        page_count=page_count,
        embedding_model=embedder.model_name,
    )


def _kept_row(document: Document, chunk_id: int, draft: ChunkDraft) -> Chunk:
    """The new position of a kept chunk (its text, vector, windows and search terms stay as stored)."""
    return Chunk(
        pk=chunk_id,
        document_id=document.pk,
        ordinal=draft.ordinal,
        page_start=draft.page_start,
        page_end=draft.page_end,
        char_start=draft.char_start,
        char_end=draft.char_end,
        token_count=draft.token_count,
    )


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


def _embed(
    document: Document,
    plan: ReusePlan,
    hashes: dict[int, str],
    fingerprint: str,
    *,
    with_windows: bool,
    total: int,
) -> tuple[list[Chunk], list[list[ChunkWindow]]]:
    """Rows for the chunks to embed, with their vectors, and each one's sentence windows with theirs."""
    embedder = get_embedder()
    sparse = get_sparse_embedder()
    done = len(plan.kept)
    document_report_progress(document_id=document.pk, done=done, total=total, stage="embedding")
    chunks: list[Chunk] = []
    windows: list[list[ChunkWindow]] = []
    for batch in batched(plan.fresh, max(1, settings.EMBEDDING_BATCH_SIZE)):
        texts = [passage_text(document, draft) for draft in batch]
        vectors = embedder.embed_passages(texts)
        for draft, text, vector in zip(batch, texts, vectors, strict=True):
            chunks.append(_chunk_row(document, draft, text, vector, hashes[draft.ordinal]))
        if with_windows:
            windows += _embed_windows(document, batch, embedder, sparse, plan.window_vectors, fingerprint)
        else:
            windows += [[] for _ in batch]
        document_report_progress(document_id=document.pk, done=done + len(chunks), total=total, stage="embedding")
    return chunks, windows


def _embed_windows(
    document: Document,
    drafts: Sequence[ChunkDraft],
    embedder: Embedder,
    sparse: SparseEmbedder | None,
    stored: dict[str, tuple],
    fingerprint: str,
) -> list[list[ChunkWindow]]:
    """Windows of changed chunks: those whose text was already embedded (in any chunk) reuse their vectors."""
    spans = [sentence_windows(draft.text, target_tokens=settings.SEARCH_WINDOW_TOKENS) for draft in drafts]
    texts = [
        window_text(document, draft, draft.text[start:end])
        for draft, draft_spans in zip(drafts, spans, strict=True)
        for start, end in draft_spans
    ]
    hashes = [content_hash(fingerprint, text) for text in texts]
    missing = list(dict.fromkeys(digest for digest in hashes if digest not in stored))
    missing_texts = {digest: text for digest, text in zip(hashes, texts, strict=True) if digest in missing}
    new_texts = [missing_texts[digest] for digest in missing]
    vectors = embedder.embed_passages(new_texts) if new_texts else []
    found = dict(zip(missing, zip(vectors, _sparse_rows(sparse, new_texts), strict=True), strict=True))
    digests = iter(hashes)
    rows = []
    for draft_spans in spans:
        draft_rows = []
        for ordinal, (start, end) in enumerate(draft_spans):
            digest = next(digests)
            dense, sparse_vector = stored.get(digest) or found[digest]
            draft_rows.append(
                ChunkWindow(
                    ordinal=ordinal,
                    char_start=start,
                    char_end=end,
                    content_hash=digest,
                    embedding=dense,
                    sparse_embedding=sparse_vector,
                )
            )
        rows.append(draft_rows)
    return rows


def window_text(document: Document, draft: ChunkDraft, text: str) -> str:
    # A few sentences say even less about their context than a chunk does: title and headings go in front.
    heading = SECTION_SEPARATOR.join((document.title, *draft.section_path))
    return f"{heading}\n{text}"


def _sparse_rows(sparse: SparseEmbedder | None, texts: list[str]) -> list[SparseVector | None]:
    if sparse is None:
        return [None] * len(texts)
    return [SparseVector(terms, SPARSE_DIMENSIONS) for terms in sparse.embed_passages_sparse(texts)]


def _chunk_row(document: Document, draft: ChunkDraft, embedded_text: str, vector, digest: str) -> Chunk:
    return Chunk(
        content_hash=digest,
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
