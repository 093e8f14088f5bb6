"""The pieces every worker shares for recovery: one reconcile pass per interval across processes, workers that
outlive a Redis they cannot reach, and a pulse that tells a dead worker from a busy one."""

from __future__ import annotations

import time
import uuid

import pytest
import redis
from rq import Queue, Worker

from protostar.periodic import Periodic
from protostar.workers import SimpleWorker
from tests.conftest import wait_until


def test_a_periodic_task_runs_once_per_interval_however_many_processes_run_it():
    name = f"probe-{uuid.uuid4().hex}"
    runs: list[str] = []
    first = Periodic(name, 30, lambda: runs.append("first"))
    second = Periodic(name, 30, lambda: runs.append("second"))
    assert first.run_once() and not second.run_once()
    assert runs == ["first"]


@pytest.fixture
def unreachable() -> redis.Redis:
    # A loopback port nothing listens on: every command fails as with a Redis that is down.
    return redis.Redis(host="127.0.0.1", port=9, socket_connect_timeout=0.5)


def test_a_worker_keeps_going_through_beats_and_maintenance_while_redis_is_away(unreachable):
    from protostar import queues

    worker = SimpleWorker([Queue("probe", connection=queues.connection())], connection=queues.connection())
    # Redis goes away after the worker started.
    worker.connection = unreachable
    for queue in worker.queues:
        queue.connection = unreachable
    worker.heartbeat()
    worker.run_maintenance_tasks()
    with pytest.raises(redis.ConnectionError):
        unreachable.ping()  # the same calls through plain rq end its work loop


@pytest.fixture
def pulsing(settings):
    """A worker of the project's classes, born and pulsing (every 0.25 s), whose main thread then does nothing."""
    from protostar import queues

    settings.WORKER_LIVE_SECONDS = 1.5
    conn = queues.connection()
    worker = SimpleWorker([Queue(f"pulse-{uuid.uuid4().hex[:8]}", connection=conn)], connection=conn)
    worker.bootstrap()
    yield worker
    worker.teardown()


def test_a_busy_worker_stays_live_on_its_pulse_alone_and_a_silent_one_drops_out(pulsing):
    from protostar import queues

    conn, queue = pulsing.connection, pulsing.queues[0]
    born = Worker.find_by_key(pulsing.key, connection=conn).last_heartbeat
    # Three lifetimes of the pulse key with no beat from rq (as while one document runs for minutes): time passing is
    # what is tested here, not something to wait for.
    time.sleep(3 * 1.5)
    assert Worker.find_by_key(pulsing.key, connection=conn).last_heartbeat == born, "rq itself did not beat"
    assert [w.name for w in queues.live_workers(queue.name, conn)] == [pulsing.name]
    # A SIGKILLed process's pulse ends with it: rq still lists the worker, live_workers drops it.
    pulsing._pulse_stopped.set()
    wait_until(lambda: not queues.live_workers(queue.name, conn), timeout=10, message="the silent worker dropped")
    assert [w.name for w in Worker.all(queue=queue)] == [pulsing.name]


def test_a_worker_without_a_pulse_counts_as_rq_lists_it():
    from rq.worker import SimpleWorker as PlainWorker

    from protostar import queues

    conn = queues.connection()
    queue = Queue(f"plain-{uuid.uuid4().hex[:8]}", connection=conn)
    plain = PlainWorker([queue], connection=conn)  # `rq worker` as an operator may start it
    plain.register_birth()
    try:
        assert [w.name for w in queues.live_workers(queue.name, conn)] == [plain.name]
    finally:
        plain.register_death()


def test_a_worker_that_registered_its_death_leaves_no_pulse(pulsing):
    from protostar import queues

    conn = pulsing.connection
    assert conn.exists(queues.pulse_key(pulsing.name))
    pulsing.register_death()  # a warm shutdown
    pulsing._pulse_thread.join(timeout=5)
    assert not pulsing._pulse_thread.is_alive()
    assert not conn.exists(queues.pulse_key(pulsing.name))
    assert not queues.live_workers(pulsing.queues[0].name, conn)


@pytest.mark.django_db(transaction=True)
def test_a_job_kind_queues_after_the_commit_with_its_timeout_and_retry_policy(settings):
    from django.db import transaction
    from rq import Retry
    from rq.job import Job

    from protostar import queues
    from protostar.queues import JobKind

    settings.PROBE_JOB_TIMEOUT = 77
    marker = f"probe-{uuid.uuid4().hex}"
    kind = JobKind(
        queue="default",
        function="protostar.jobs.probe",
        timeout_setting="PROBE_JOB_TIMEOUT",
        retry=Retry(max=2, interval=[3, 9]),
        job_id=lambda label: label,
    )
    conn = queues.connection("default")
    with transaction.atomic():
        kind.enqueue(marker)
        assert Job.fetch_many([marker], connection=conn) == [None], "nothing is queued before the commit"
    job = Job.fetch(marker, connection=conn)
    try:
        assert job.timeout == 77 and job.retries_left == 2 and job.retry_intervals == [3, 9]
        assert job.func_name == "protostar.jobs.probe" and job.args == (marker,)
    finally:
        job.delete()


def test_a_retry_long_overdue_that_no_scheduler_queued_counts_as_lost(settings):
    from datetime import UTC, datetime, timedelta

    from protostar import queues
    from protostar.queues import SCHEDULED_OVERDUE_SECONDS, JobKind

    settings.PROBE_JOB_TIMEOUT = 30
    kind = JobKind(
        queue="default",
        function="protostar.jobs.probe",
        timeout_setting="PROBE_JOB_TIMEOUT",
        job_id=lambda label: label,
    )
    # Scheduled on a queue no worker serves, so no scheduler moves the jobs while the test looks at them.
    queue = Queue(f"probe-overdue-{uuid.uuid4().hex}", connection=queues.connection("default"))
    late, soon = f"late-{uuid.uuid4().hex}", f"soon-{uuid.uuid4().hex}"
    now = datetime.now(UTC)
    jobs = [
        queue.enqueue_at(now - timedelta(seconds=SCHEDULED_OVERDUE_SECONDS + 60), "protostar.jobs.probe", job_id=late),
        queue.enqueue_at(now + timedelta(hours=1), "protostar.jobs.probe", job_id=soon),
    ]
    try:
        assert kind.queued_job(late) is None, "a retry due a minute ago that nothing queued will not run by itself"
        assert kind.queued_job(soon) is not None
    finally:
        for job in jobs:
            job.delete()
