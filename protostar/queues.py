"""The process's Redis clients for the rq queues, made once and shared by its threads.

``django_rq.get_connection()`` and ``get_queue()`` build a new client, with a new connection pool, on every call: each
enqueue, lease or stop request then opened a TCP connection, authenticated, sent the client handshake and dropped the
connection again. One client per queue server and process keeps its pool (redis-py clients are thread-safe, and a
pool used after a fork reconnects by itself).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import django_rq
import redis
from django.conf import settings
from django.db import transaction
from django_rq.queues import DjangoRQ
from rq import Queue, Retry, Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry

_lock = threading.Lock()
_clients: dict[tuple[int, str], redis.Redis] = {}


def connection(queue_name: str = "default") -> redis.Redis:
    """The shared client for ``queue_name``'s Redis server (as configured in ``RQ_QUEUES``)."""
    # Not at module level: django_rq.settings reads the Django settings when imported.
    from django_rq.settings import QUEUES

    key = (os.getpid(), repr(sorted(QUEUES[queue_name].items())))
    client = _clients.get(key)
    if client is None:
        with _lock:
            client = _clients.get(key) or _clients.setdefault(key, django_rq.get_connection(queue_name))
    return client


def queue(queue_name: str) -> DjangoRQ:
    """``django_rq.get_queue(queue_name)`` on the shared client (enqueueing on commit, as configured)."""
    return django_rq.get_queue(queue_name, connection=connection(queue_name))


@dataclass(frozen=True)
class JobKind:
    """One kind of job and everything about queueing it: its queue, its time limit (a setting's name, read at call
    time), its retry policy (rq ``Retry``: a job whose run failed or whose worker died is run again) and whether it
    waits for the caller's transaction to commit (a job must find the rows it was queued for).

    ``job_id`` gives a job a stable id from its arguments, so a reconcile can tell whether one is queued already.
    """

    queue: str
    function: str
    timeout_setting: str
    retry: Retry | None = None
    on_commit: bool = True
    job_id: Callable[..., str] | None = None
    describe: Callable[..., str] | None = None

    def enqueue(self, *args: Any) -> None:
        """Queue one run with ``args`` (ids only): now, or when the current transaction commits."""
        if self.on_commit and transaction.get_connection().in_atomic_block:
            transaction.on_commit(lambda: self._send(args))
        else:
            self._send(args)

    def queued_job(self, *args: Any) -> Job | None:
        """The job with this kind's stable id for ``args`` while it is queued, scheduled or running."""
        if self.job_id is None:
            raise TypeError(f"{self.function} jobs have no stable id")
        job = Job.fetch_many([self.job_id(*args)], connection=connection(self.queue))[0]
        if job is None or job.get_status(refresh=False) not in _LIVE_STATUSES:
            return None
        if job.get_status(refresh=False) == JobStatus.SCHEDULED and self._overdue(job):
            return None
        return job

    def _overdue(self, job: Job) -> bool:
        """A retry scheduled long ago that no scheduler has queued (its scheduler died with a killed worker, and the
        next worker cannot take the scheduler's lock before it lapses): it will not run by itself."""
        registry = ScheduledJobRegistry(job.origin, connection=connection(self.queue))
        try:
            due = registry.get_scheduled_time(job)
        except NoSuchJobError:
            return True
        if due.tzinfo is None:
            due = due.replace(tzinfo=UTC)
        return (datetime.now(UTC) - due).total_seconds() > SCHEDULED_OVERDUE_SECONDS

    def _send(self, args: tuple[Any, ...]) -> Job:
        options: dict[str, Any] = {"job_timeout": getattr(settings, self.timeout_setting)}
        if self.retry is not None:
            options["retry"] = self.retry
        if self.job_id is not None:
            options["job_id"] = self.job_id(*args)
        if self.describe is not None:
            options["description"] = self.describe(*args)
        # "auto": the commit was already waited for above, django-rq must not defer it a second time.
        queue = django_rq.get_queue(self.queue, connection=connection(self.queue), commit_mode="auto")
        return queue.enqueue(self.function, *args, **options)


# A worker of the project's classes keeps its pulse key alive from a thread of its own
# (``protostar.workers.ObservedWorker``) and marks its rq record with PULSE_FIELD.
PULSE_FIELD = "protostar_pulse"


def pulse_key(worker_name: str) -> str:
    return f"protostar:worker-pulse:{worker_name}"


def live_workers(queue_name: str | None = None, conn: redis.Redis | None = None) -> list[Worker]:
    """The workers (of ``queue_name``, or all) that are alive.

    rq lists a worker until its key expires, minutes after a SIGKILL. A worker whose record carries the pulse mark is
    alive only while its pulse key is: the key lapses ``WORKER_LIVE_SECONDS`` after its last beat, an expiry Redis
    keeps, so no two hosts' clocks are compared. A worker without the mark (a plain ``rq worker``) counts as rq lists
    it."""
    conn = conn or connection(queue_name or "default")
    queue = Queue(queue_name, connection=conn) if queue_name else None
    workers = Worker.all(connection=conn, queue=queue)
    with conn.pipeline(transaction=False) as pipe:
        for worker in workers:
            pipe.hexists(worker.key, PULSE_FIELD)
            pipe.exists(pulse_key(worker.name))
        replies = pipe.execute()
    return [
        worker
        for worker, marked, beating in zip(workers, replies[0::2], replies[1::2], strict=True)
        if beating or not marked
    ]


# A scheduled retry this late is taken as lost: a live rq scheduler moves due jobs every second, and a killed
# worker's scheduler keeps its lock for a minute, so waiting longer only delays the reconcile's re-queue (a job run
# twice is safe: each holds its answer's or document's lease).
SCHEDULED_OVERDUE_SECONDS = 10
_LIVE_STATUSES = {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.STARTED, JobStatus.DEFERRED}
