"""What a re-ingestion can keep: chunks and sentence windows whose embedded text and embedding set-up are unchanged.

Each row carries ``content_hash`` = sha256 of the set-up fingerprint and the exact text given to the embedder, so a
match means the stored vector is the one the embedder would return now. Kept chunks keep their ids, vectors and
windows; only their position (ordinal, offsets, pages) is updated, inside the same transaction as the swap.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Exists, OuterRef

from knowledge.chunking import ChunkDraft
from knowledge.models import Chunk, ChunkWindow, Document
from protostar.llm.base import Embedder, SparseEmbedder


@dataclass
class ReusePlan:
    # (id of the kept chunk row, the draft it now stands for)
    kept: list[tuple[int, ChunkDraft]] = field(default_factory=list)
    fresh: list[ChunkDraft] = field(default_factory=list)
    # window content hash → (dense vector, sparse vector or None) of windows already stored for the document
    window_vectors: dict[str, tuple] = field(default_factory=dict)


def embedding_fingerprint(embedder: Embedder, sparse: SparseEmbedder | None, *, with_windows: bool) -> str:
    """Everything besides the text that decides the stored vectors: a change in any of it re-embeds everything."""
    sparse_name = "sparse" if sparse is not None else "-"
    windows = settings.SEARCH_WINDOW_TOKENS if with_windows else 0
    return f"{embedder.model_name}|{sparse_name}|windows={windows}"


def content_hash(fingerprint: str, text: str) -> str:
    return hashlib.sha256(f"{fingerprint}\x00{text}".encode()).hexdigest()


def plan_reuse(
    document: Document, drafts: list[ChunkDraft], hashes: list[str], *, reuse: bool, with_windows: bool = False
) -> ReusePlan:
    """Split ``drafts`` (with their ``hashes``) into chunks already stored for ``document`` and chunks to embed.

    With windows on, a stored chunk without windows (ingested before windows existed, or its windows lost) is
    embedded again rather than kept: keeping it would keep it without windows for ever (``reprocess --stale``)."""
    plan = ReusePlan()
    stored: dict[str, list[int]] = defaultdict(list)
    if reuse:
        rows = Chunk.objects.filter(document_id=document.pk).exclude(content_hash="").order_by("ordinal")
        if with_windows:
            rows = rows.filter(Exists(ChunkWindow.objects.filter(chunk_id=OuterRef("pk"))))
        for chunk_id, digest in rows.values_list("pk", "content_hash"):
            stored[digest].append(chunk_id)
    for draft, digest in zip(drafts, hashes, strict=True):
        if stored.get(digest):
            plan.kept.append((stored[digest].pop(0), draft))
        else:
            plan.fresh.append(draft)
    if reuse and plan.fresh:
        windows = ChunkWindow.objects.filter(chunk__document_id=document.pk).exclude(content_hash="")
        for digest, dense, sparse in windows.values_list("content_hash", "embedding", "sparse_embedding"):
            plan.window_vectors.setdefault(digest, (dense, sparse))
    return plan
