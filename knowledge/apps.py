from __future__ import annotations

from django.apps import AppConfig


class KnowledgeConfig(AppConfig):
    name = "knowledge"
    verbose_name = "Knowledge base"

    def ready(self) -> None:
        from knowledge import checks  # noqa: F401  (registers system checks)
        from knowledge.ocr import connect_signals
        from knowledge.selectors import document_uploader_id
        from knowledge.services import INGEST_JOB
        from knowledge.sources.services import SOURCE_SYNC_JOB
        from protostar.logs import register_job_subject

        connect_signals()
        register_job_subject(INGEST_JOB.function, field="document_id", owner=document_uploader_id)
        register_job_subject(SOURCE_SYNC_JOB.function, field="source_id")  # a source belongs to no one user
