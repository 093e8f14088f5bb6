"""The knowledge queue's worker: jobs run in the worker process itself, with the embedder already loaded.

A forking worker would load the embedding model and the tokenizer again in every work-horse and pay the fork on
every document; here both are loaded once at start-up and stay hot. The job timeout still applies (rq's signal
death penalty runs in this main thread), and a job's failure is caught by the job itself (``knowledge.tasks``).

    manage.py rqworker knowledge --worker-class knowledge.worker.KnowledgeWorker --with-scheduler
"""

from __future__ import annotations

from django.conf import settings
from rq.worker import SimpleWorker

from knowledge.recovery import documents_reconcile
from protostar.llm.base import get_embedder
from protostar.periodic import Periodic
from protostar.startup import freeze_startup_objects
from protostar.tokens import count_tokens
from protostar.workers import ObservedWorker, OutageTolerantMixin


class KnowledgeWorker(ObservedWorker, OutageTolerantMixin, SimpleWorker):
    def bootstrap(self, *args, **kwargs) -> None:
        super().bootstrap(*args, **kwargs)
        warm_up()
        freeze_startup_objects()
        # Every knowledge worker looks for documents left stuck (one process per interval does the pass).
        Periodic("knowledge-reconcile", settings.INGEST_RECONCILE_SECONDS, documents_reconcile).start()


def warm_up() -> None:
    count_tokens("warm-up")
    get_embedder().embed_passages(["warm-up"])
