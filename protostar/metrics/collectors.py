"""Figures read from Redis at scrape time: they describe the whole cluster, not one process."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import redis
from django.conf import settings
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from rq import Queue
from rq.job import Job
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

from protostar import queues

logger = logging.getLogger(__name__)


class QueueCollector(Collector):
    """Depth, oldest job age, running, scheduled and failed jobs, and live workers of every rq queue."""

    def __init__(self, names: Sequence[str] | None = None, connection: redis.Redis | None = None) -> None:
        self.names = names
        self.connection = connection

    def collect(self) -> Iterator[GaugeMetricFamily]:
        families = {
            "depth": GaugeMetricFamily("protostar_queue_depth", "Jobs waiting in the queue.", labels=["queue"]),
            "age": GaugeMetricFamily(
                "protostar_queue_oldest_job_age_seconds",
                "Age of the oldest waiting job (0 when the queue is empty).",
                labels=["queue"],
            ),
            "started": GaugeMetricFamily("protostar_queue_started_jobs", "Jobs running now.", labels=["queue"]),
            "scheduled": GaugeMetricFamily(
                "protostar_queue_scheduled_jobs", "Jobs waiting for a later time (retries).", labels=["queue"]
            ),
            "failed": GaugeMetricFamily(
                "protostar_queue_failed_jobs", "Jobs kept in the failed registry.", labels=["queue"]
            ),
            "workers": GaugeMetricFamily(
                "protostar_queue_workers", "Live workers serving the queue.", labels=["queue"]
            ),
        }
        for name in self.names or settings.QUEUE_NAMES:
            try:
                figures = queue_figures(name, self.connection or queues.connection(name))
            except Exception:  # a scrape reports what it can; Redis being down shows as missing series
                logger.warning("could not read queue %s for /metrics", name, exc_info=True)
                continue
            for key, value in figures.items():
                families[key].add_metric([name], value)
        yield from families.values()


def queue_figures(name: str, conn: redis.Redis) -> dict[str, float]:
    queue = Queue(name, connection=conn)
    oldest_age = 0.0
    oldest_id = conn.lindex(queue.key, 0)
    if oldest_id:
        job = Job.fetch(oldest_id.decode(), connection=conn) if _exists(conn, oldest_id) else None
        if job is not None and job.enqueued_at:
            oldest_age = max(0.0, (datetime.now(UTC) - _aware(job.enqueued_at)).total_seconds())
    return {
        "depth": queue.count,
        "age": oldest_age,
        "started": StartedJobRegistry(name, connection=conn).count,
        "scheduled": ScheduledJobRegistry(name, connection=conn).count,
        "failed": FailedJobRegistry(name, connection=conn).count,
        "workers": len(queues.live_workers(name, conn)),
    }


def _exists(conn, job_id: bytes) -> bool:
    return bool(conn.exists(Job.redis_job_namespace_prefix + job_id.decode()))


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
