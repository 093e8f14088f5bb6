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
    # Unique among uploads (see Meta); a synced source mirrors its files by path, whatever their content.
    sha256 = models.CharField(max_length=64, db_index=True)
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
    # What the progress counts: "", "ocr" (pages read by OCR) or "embedding" (chunks embedded).
    progress_stage = models.CharField(max_length=20, blank=True)
    # Page numbers whose text came from OCR, and the engine's mean word confidence over them (0–100).
    ocr_pages = models.JSONField(default=list, blank=True)
    ocr_confidence = models.FloatField(null=True, blank=True)
    # Set when the document mirrors a file of a synced source; ``source_version`` is the cheap change marker
    # (size and mtime, or the S3 ETag) that spares reading unchanged files on every run.
    source = models.ForeignKey(
        "knowledge.Source", null=True, blank=True, on_delete=models.CASCADE, related_name="documents"
    )
    source_path = models.CharField(max_length=1024, blank=True)
    source_version = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["sha256"], condition=models.Q(source__isnull=True), name="document_unique_upload_sha256"
            ),
            models.UniqueConstraint(
                fields=["source", "source_path"],
                condition=models.Q(source__isnull=False),
                name="document_unique_source_path",
            ),
        ]

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
    # sha256 of the embedded text and the embedding set-up: a re-ingested chunk with the same hash keeps its row,
    # its vector and its windows. Empty for chunks written before hashes existed (never reused).
    content_hash = models.CharField(max_length=64, blank=True)
    # "ko" or "en" (``protostar.text.detect_language``). The embedder scores passages in the query's language
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
        # Deferred: an incremental re-ingestion renumbers the chunks it keeps, which would collide mid-update.
        constraints = [
            models.UniqueConstraint(
                fields=["document", "ordinal"], name="chunk_unique_ordinal", deferrable=models.Deferrable.DEFERRED
            )
        ]
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
    # As ``Chunk.content_hash``: a window with the same text and set-up reuses the vectors of an earlier one.
    content_hash = models.CharField(max_length=64, blank=True)
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


class Source(models.Model):
    """A server folder or an S3 bucket prefix whose files the knowledge base mirrors (``knowledge.sources``)."""

    class Kind(models.TextChoices):
        FOLDER = "folder", "Server folder"
        S3 = "s3", "S3 bucket prefix"

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    # Folder: an absolute path under one of SOURCE_FOLDER_ROOTS. S3: the bucket name.
    location = models.CharField(max_length=1024)
    prefix = models.CharField(max_length=1024, blank=True, help_text="S3 only: the key prefix to mirror.")
    # Copied to every document of the source on each run (empty: every signed-in user may read them).
    allowed_groups = models.ManyToManyField("auth.Group", blank=True, related_name="sources")
    enabled = models.BooleanField(default=True)
    sync_interval_minutes = models.PositiveIntegerField(default=60)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SourceRun(models.Model):
    """One pass over a source: what it added, updated, removed and could not take, file by file."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="runs")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    added = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    removed = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    # [{"path": ..., "action": "added|updated|removed|failed", "reason": ...}], unchanged files left out.
    details = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.source} @ {self.started_at:%Y-%m-%d %H:%M}"


class OcrPage(models.Model):
    """The OCR text of one image-only page, kept so an interrupted or repeated ingestion resumes, not restarts.

    ``file_sha256`` ties the row to the file's content: a changed file is read again.
    """

    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="ocr_results")
    number = models.PositiveIntegerField()
    file_sha256 = models.CharField(max_length=64)
    text = models.TextField(blank=True)
    # Mean word confidence reported by the engine (0–100); null when the page could not be read.
    confidence = models.FloatField(null=True, blank=True)
    engine = models.CharField(max_length=100)
    # Why a page gave no text (time limit, engine error), for staff.
    error = models.CharField(max_length=300, blank=True)
    seconds = models.FloatField(default=0)

    class Meta:
        ordering = ["document_id", "number"]
        constraints = [models.UniqueConstraint(fields=["document", "number"], name="ocr_page_unique_number")]

    def __str__(self) -> str:
        return f"{self.document_id} p.{self.number}"


def page_range_label(start: int | None, end: int | None) -> str:
    """ "3", "3–5", or "" for text without pages."""
    if start is None:
        return ""
    if end and end != start:
        return f"{start}–{end}"
    return str(start)
