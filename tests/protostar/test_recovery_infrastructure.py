"""The pieces every worker shares for recovery: one reconcile pass per interval across processes, and workers that
outlive a Redis they cannot reach."""

from __future__ import annotations

import uuid

import pytest
import redis
from rq import Queue

from protostar.periodic import Periodic
from protostar.workers import SimpleWorker


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
