from __future__ import annotations

from django.apps import AppConfig


class KnowledgeConfig(AppConfig):
    name = "knowledge"
    verbose_name = "Knowledge base"

    def ready(self) -> None:
        from knowledge import checks  # noqa: F401  (registers system checks)
        from knowledge.selectors import document_uploader_id
        from knowledge.services import INGEST_JOB
        from protostar.logs import register_job_subject

        register_job_subject(INGEST_JOB.function, field="document_id", owner=document_uploader_id)
