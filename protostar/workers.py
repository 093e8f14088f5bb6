"""What every worker class here shares: it outlives a Redis restart, and it is observed (``ObservedWorker``: a
pulse, the job's ids on every log line, failure and retry counts).

rq's work loop retries a lost connection only while it waits for a job; a Redis error anywhere else (the suspension
check, a heartbeat, the maintenance pass, recording a job's end) ends the loop and the worker process with it. These
overrides wait for Redis instead, so workers go on by themselves once it is back.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time

import redis
from django.conf import settings
from django.db import connections
from rq.job import Job
from rq.queue import Queue
from rq.worker import SimpleWorker as RQSimpleWorker

from protostar import metrics, queues
from protostar.logs import job_subject, log_context

logger = logging.getLogger(__name__)
REDIS_UNAVAILABLE = (redis.ConnectionError, redis.TimeoutError)
# Pauses between attempts while Redis is away; they pace the retries, nothing waits on them.
RECONNECT_PAUSES = (0.5, 1.0, 2.0, 4.0)


class OutageTolerantMixin:
    def check_for_suspension(self, burst: bool) -> None:
        for attempt in itertools.count():
            try:
                super().check_for_suspension(burst)
                return
            except REDIS_UNAVAILABLE as exc:
                if self._stop_requested:
                    return
                pause = RECONNECT_PAUSES[min(attempt, len(RECONNECT_PAUSES) - 1)]
                logger.warning("worker %s: Redis is unavailable (%s); retrying in %.1f s", self.name, exc, pause)
                time.sleep(pause)

    def run_maintenance_tasks(self) -> None:
        try:
            super().run_maintenance_tasks()
        except REDIS_UNAVAILABLE as exc:
            logger.warning("worker %s: maintenance skipped, Redis is unavailable (%s)", self.name, exc)

    def heartbeat(self, timeout: int | None = None, pipeline=None) -> None:
        try:
            super().heartbeat(timeout, pipeline)
        except REDIS_UNAVAILABLE as exc:
            logger.warning("worker %s: heartbeat skipped, Redis is unavailable (%s)", self.name, exc)

    def execute_job(self, job, queue) -> None:
        try:
            super().execute_job(job, queue)
        except REDIS_UNAVAILABLE as exc:
            # The job ran (its own state is in the database); only rq's record of its end was lost.
            logger.warning(
                "worker %s: the end of job %s was not recorded, Redis is unavailable (%s)", self.name, job.id, exc
            )
        finally:
            # Back to the pool after every job: a connection kept across jobs would stay broken after a database
            # restart (nothing else closes it in a worker), while the pool checks what it hands out.
            connections.close_all()


class ObservedWorker:
    """A mixin for ``rq.worker.BaseWorker`` subclasses (it must come first in the bases).

    It also gives the worker a pulse: a thread that renews the worker's pulse key six times per
    ``WORKER_LIVE_SECONDS``, whatever the main thread does. rq beats only between its own steps (a document can take
    minutes, an idle wait for a job up to ``worker_ttl`` − 15 s) and lists a SIGKILLed worker until its key expires
    minutes later; the pulse key lapses ``WORKER_LIVE_SECONDS`` after a death (``protostar.queues.live_workers``).
    """

    def bootstrap(self, *args, **kwargs) -> None:
        super().bootstrap(*args, **kwargs)  # type: ignore[misc]
        self._pulse_stopped = threading.Event()
        self._beat()  # before the mark: a marked worker without a pulse key reads as dead
        self.connection.hset(self.key, queues.PULSE_FIELD, "1")  # type: ignore[attr-defined]
        self._pulse_thread = threading.Thread(target=self._pulse, name="worker-pulse", daemon=True)
        self._pulse_thread.start()

    def _beat(self) -> None:
        lifetime_ms = int(settings.WORKER_LIVE_SECONDS * 1000)
        self.connection.set(queues.pulse_key(self.name), "1", px=lifetime_ms)  # type: ignore[attr-defined]

    def _pulse(self) -> None:
        failing = False
        while not self._pulse_stopped.wait(settings.WORKER_LIVE_SECONDS / 6):
            try:
                self._beat()
                failing = False
            except Exception as exc:  # the thread goes on: a pulse that ended would read as a dead worker
                if not failing:  # once per outage, not once per beat
                    logger.warning("worker %s: pulse skipped (%s); retrying", self.name, exc)  # type: ignore[attr-defined]
                failing = True

    def register_death(self) -> None:
        if hasattr(self, "_pulse_stopped"):
            self._pulse_stopped.set()
            # A beat already under way may set the key again; harmless, as rq no longer lists the worker.
            with contextlib.suppress(*REDIS_UNAVAILABLE):
                self.connection.delete(queues.pulse_key(self.name))  # type: ignore[attr-defined]
        super().register_death()  # type: ignore[misc]

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


class SimpleWorker(ObservedWorker, OutageTolerantMixin, RQSimpleWorker):
    """rq's ``SimpleWorker`` that survives a Redis restart and is observed (the summaries and default queues)."""
