from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import models
from pgvector.django import HnswIndex, SparseVectorField, VectorField

# Frozen into the migration and the HNSW index; a system check refuses to start when the embedder disagrees.
EMBEDDING_DIMENSIONS = 384
# The sparse "latent terms" space of the bundled embedder; chunks embedded without one keep it empty.
SPARSE_DIMENSIONS = 16384


def document_storage_key(instance: Document, filename: str) -> str:
    """A server-generated key: user-supplied names never become storage paths."""
    return f"documents/{uuid.uuid4().hex}"


class Document(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        PROCESSING = "processing", "Processing"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    title = models.CharField(max_length=300)
    original_filename = models.CharField(max_length=255)
    file = models.FileField(upload_to=document_storage_key, max_length=300)
    content_type = models.CharField(max_length=120)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64, unique=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED, db_index=True)
    error = models.TextField(blank=True)
    page_count = models.PositiveIntegerField(null=True, blank=True)
    # Runs of the ingestion job that started on this document (a killed or failed run is retried, up to a bound).
    attempt_count = models.PositiveSmallIntegerField("attempts", default=0)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    chunk_count = models.PositiveIntegerField(default=0)
    embedding_model = models.CharField(max_length=200, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="documents"
    )
    # Empty means every signed-in user may read the document; otherwise only members of these groups (and staff).
    allowed_groups = models.ManyToManyField("auth.Group", blank=True, related_name="documents")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    processing_started_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.title

    @property
    def progress_percent(self) -> int:
        if self.status == self.Status.READY:
            return 100
        if not self.progress_total:
            return 0
        return min(100, round(100 * self.progress_done / self.progress_total))


class Chunk(models.Model):
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    ordinal = models.PositiveIntegerField()
    text = models.TextField()
    page_start = models.PositiveIntegerField(null=True, blank=True)
    page_end = models.PositiveIntegerField(null=True, blank=True)
    section_path = models.CharField(max_length=500, blank=True)
    char_start = models.PositiveIntegerField()
    char_end = models.PositiveIntegerField()
    token_count = models.PositiveIntegerField()
    embedding = VectorField(dimensions=EMBEDDING_DIMENSIONS)
    # "ko" or "en" (``protostar.tokens.detect_language``). The embedder scores passages in the query's language
    # higher across the board, so search ranks each language's candidates against their own average.
    language = models.CharField(max_length=8, blank=True)
    # Korean-aware keyword terms (character bigrams for Hangul, lowercased words otherwise), space-separated;
    # the tsvector below is derived by PostgreSQL so it can never drift from the terms.
    search_terms = models.TextField(blank=True)
    search_vector = models.GeneratedField(
        expression=SearchVector("search_terms", config="simple"),
        output_field=SearchVectorField(),
        db_persist=True,
    )

    class Meta:
        ordering = ["document_id", "ordinal"]
        constraints = [models.UniqueConstraint(fields=["document", "ordinal"], name="chunk_unique_ordinal")]
        indexes = [
            HnswIndex(
                name="chunk_embedding_hnsw",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
            ),
            GinIndex(fields=["search_vector"], name="chunk_search_vector_gin"),
        ]

    def __str__(self) -> str:
        return f"{self.document_id}#{self.ordinal}"

    @property
    def page_label(self) -> str:
        return page_range_label(self.page_start, self.page_end)


class ChunkWindow(models.Model):
    """A few consecutive sentences of a chunk, embedded on their own.

    The small embedder matches a short passage (above all across languages) far better than a 300-token chunk,
    so search scores a chunk by its best window; the sparse latent-term vectors live here for the same reason.
    """

    chunk = models.ForeignKey(Chunk, on_delete=models.CASCADE, related_name="windows")
    ordinal = models.PositiveIntegerField()
    # Offsets into the chunk's text.
    char_start = models.PositiveIntegerField()
    char_end = models.PositiveIntegerField()
    embedding = VectorField(dimensions=EMBEDDING_DIMENSIONS)
    # Empty when the embedder has no sparse head or the sparse list is off.
    sparse_embedding = SparseVectorField(dimensions=SPARSE_DIMENSIONS, null=True, blank=True)

    class Meta:
        ordering = ["chunk_id", "ordinal"]
        constraints = [models.UniqueConstraint(fields=["chunk", "ordinal"], name="window_unique_ordinal")]
        indexes = [
            HnswIndex(
                name="window_embedding_hnsw",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
            ),
            HnswIndex(
                name="window_sparse_hnsw",
                fields=["sparse_embedding"],
                m=16,
                ef_construction=64,
                opclasses=["sparsevec_ip_ops"],
            ),
        ]

    def __str__(self) -> str:
        return f"{self.chunk_id}/{self.ordinal}"


def page_range_label(start: int | None, end: int | None) -> str:
    """ "3", "3–5", or "" for text without pages."""
    if start is None:
        return ""
    if end and end != start:
        return f"{start}–{end}"
    return str(start)
