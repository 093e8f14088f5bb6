"""An rq worker that streams many answers at once from one process.

A forking worker runs one job at a time, and an answer job spends its life waiting on the LLM: 20 concurrent asks
would queue behind each other. This worker runs up to ``CHAT_WORKER_THREADS`` jobs in threads of one process (no fork
per job), dequeuing only when a slot is free so queued jobs stay visible to other workers. Jobs must be thread-safe:
the answer job closes its database connection while it streams, so a thread holds one only for its short ORM steps.

    manage.py rqworker chat --worker-class chat.worker.ThreadedWorker --with-scheduler
"""

from __future__ import annotations

import os

# One OpenMP thread for the embedder here: this process runs many answers at once, so parallel work comes from the
# answers, and a query's OpenMP threads waiting for each other (spinning by default) take the CPU the streams need
# (on two busy cores a spinning pair took several times longer per pass than one thread: docs/benchmarks.md).
# Set before anything below is imported; the engine reads it when it loads.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import connections
from rq.job import Job
from rq.queue import Queue
from rq.timeouts import TimerDeathPenalty
from rq.worker import SimpleWorker, WorkerStatus

from chat.answering import answers_streaming, warm_up
from chat.recovery import answers_reconcile
from knowledge.query_embedding import lower_priority
from protostar.periodic import Periodic
from protostar.startup import freeze_startup_objects
from protostar.workers import ObservedWorker, OutageTolerantMixin

# How often a worker with every slot busy still sends its heartbeat (its key expires after worker_ttl + 60 s).
SLOT_WAIT_SECONDS = 5.0
# rq beats before and after every dequeue and after every job start, three Redis round trips each time. With a
# hundred answers asked at once those beats held up the one thread that dequeues (see docs/benchmarks.md); the worker
# key lives for worker_ttl + 60 s, so one plain beat per second is plenty.
HEARTBEAT_INTERVAL_SECONDS = 1.0


class ThreadedWorker(ObservedWorker, OutageTolerantMixin, SimpleWorker):
    # SIGALRM only reaches the main thread; the timer penalty raises the timeout inside the job's own thread.
    death_penalty_class = TimerDeathPenalty

    def __init__(self, *args, threads: int | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.threads = threads or settings.CHAT_WORKER_THREADS
        self._slots = threading.BoundedSemaphore(self.threads)
        self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="chat-job")
        self._last_plain_beat = float("-inf")

    def bootstrap(self, *args, **kwargs) -> None:
        super().bootstrap(*args, **kwargs)
        # Only while answers stream: a question asked into a quiet worker is embedded at full priority.
        lower_priority(settings.CHAT_QUERY_NICENESS, when=answers_streaming)
        warm_up()
        freeze_startup_objects()
        # Every chat worker looks for answers whose run died (one process per interval does the pass).
        Periodic("chat-reconcile", settings.CHAT_RECONCILE_SECONDS, answers_reconcile).start()

    def heartbeat(self, timeout: int | None = None, pipeline=None) -> None:
        # Beats with their own timeout or pipeline (rq extending the key around a job) always go through.
        if timeout is None and pipeline is None:
            if time.monotonic() - self._last_plain_beat < HEARTBEAT_INTERVAL_SECONDS:
                return
            self._last_plain_beat = time.monotonic()
        super().heartbeat(timeout, pipeline)

    def dequeue_job_and_maintain_ttl(self, timeout: int | None, max_idle_time: int | None = None):
        # Take a slot before taking a job: a job dequeued without a free thread would wait here, invisible.
        while not self._slots.acquire(timeout=SLOT_WAIT_SECONDS):
            self.heartbeat()
            if self._stop_requested:
                return None
        result = super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
        if result is None:
            self._slots.release()
        return result

    def execute_job(self, job: Job, queue: Queue) -> None:
        execution = self.prepare_execution(job)
        self._pool.submit(self._perform, job, queue, execution)

    def _perform(self, job: Job, queue: Queue, execution) -> None:
        try:
            self.perform_job(job, queue, execution)
        finally:
            # Threads are reused across jobs: never leave a connection open between them.
            connections.close_all()
            if not self.executions:
                self.set_state(WorkerStatus.IDLE)
            self._slots.release()

    def teardown(self) -> None:
        # Warm shutdown: let the answers in flight finish (bounded by their job timeout) before deregistering.
        self._pool.shutdown(wait=True)
        super().teardown()
