"""What every Protostar worker class adds to rq's: the job's ids on every log line, and failure figures.

    manage.py rqworker summaries default --worker-class protostar.worker.SimpleWorker --with-scheduler

``chat.worker.ThreadedWorker`` and ``knowledge.worker.KnowledgeWorker`` mix in the same ``ObservedWorker``.
"""

from __future__ import annotations

from rq import worker as rq_worker
from rq.job import Job
from rq.queue import Queue

from protostar import metrics
from protostar.logs import job_subject, log_context


class ObservedWorker:
    """A mixin for ``rq.worker.BaseWorker`` subclasses (it must come first in the bases)."""

    def perform_job(self, job: Job, queue: Queue, execution) -> bool:
        # The whole run, including rq's own lines about it and the failure handling, carries the job's ids.
        with log_context(job_id=job.id, queue=queue.name, **job_subject(job.func_name, tuple(job.args or ()))):
            return super().perform_job(job, queue, execution)  # type: ignore[misc]

    def handle_job_failure(self, job: Job, queue: Queue, *args, **kwargs) -> None:
        stopped = getattr(self, "_stopped_job_id", None) == job.id
        if job.should_retry and not stopped:
            metrics.JOBS_RETRIED.labels(queue.name).inc()
        else:
            metrics.JOBS_FAILED.labels(queue.name).inc()
        super().handle_job_failure(job, queue, *args, **kwargs)  # type: ignore[misc]


class SimpleWorker(ObservedWorker, rq_worker.SimpleWorker):
    """rq's in-process worker, observed (the summaries and default queues)."""
