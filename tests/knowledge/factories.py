"""Ready documents with embedded chunks, created directly (no upload, no worker) for tests and benchmarks that need
something to retrieve but are not about ingestion. Chunks are embedded and keyword-indexed like ingestion does (without
sentence windows: the vector and keyword lists find them)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from knowledge.lexical import search_terms_text
from knowledge.models import Chunk, Document
from protostar.llm.registry import get_embedder
from protostar.tokens import detect_language


def ready_document(*, title: str, chunks: Sequence[tuple[str, str]], **fields) -> Document:
    """A ``ready`` document whose chunk ``i`` is ``(section, text)`` on page ``i + 1``, readable by every signed-in
    user unless ``visibility`` says otherwise."""
    document = Document.objects.create(
        title=title,
        original_filename=fields.pop("original_filename", "handbook.txt"),
        file=fields.pop("file", f"documents/{uuid.uuid4().hex}"),
        content_type="text/plain",
        size=sum(len(text) for _, text in chunks),
        sha256=fields.pop("sha256", uuid.uuid4().hex + uuid.uuid4().hex),
        status=Document.Status.READY,
        visibility=fields.pop("visibility", Document.Visibility.ALL_USERS),
        **fields,
    )
    vectors = get_embedder().embed_passages([text for _, text in chunks])
    offset = 0
    rows = []
    for ordinal, ((section, text), vector) in enumerate(zip(chunks, vectors, strict=True)):
        rows.append(
            Chunk(
                document=document,
                ordinal=ordinal,
                text=text,
                page_start=ordinal + 1,
                page_end=ordinal + 1,
                section_path=section,
                char_start=offset,
                char_end=offset + len(text),
                token_count=len(text.split()),
                embedding=vector,
                language=detect_language(text),
                search_terms=search_terms_text(text),
            )
        )
        offset += len(text)
    Chunk.objects.bulk_create(rows)
    document.chunk_count = len(rows)
    document.save(update_fields=["chunk_count"])
    return document
