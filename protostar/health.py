"""Reads the state of every part the app depends on, for ``/healthz`` and operators."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import psycopg
from django.conf import settings
from django.db import connection

from protostar import queues
from protostar.storage import minio_client

WORKER_QUEUES = ("chat", "knowledge", "summaries")


@dataclass
class PartHealth:
    ok: bool
    detail: str
    ms: float


def _timed(check: Callable[[], str]) -> PartHealth:
    started = time.perf_counter()
    try:
        detail = check()
        ok = True
    except Exception as exc:  # a health probe reports every failure instead of raising it
        detail, ok = f"{type(exc).__name__}: {exc}", False
    return PartHealth(ok=ok, detail=detail, ms=round((time.perf_counter() - started) * 1000, 1))


# A probe connects directly, with a short timeout: through the pool an unreachable server would take the pool's
# whole wait (DB_POOL_TIMEOUT) and be reported only as "couldn't get a connection".
HEALTH_CONNECT_TIMEOUT = 3


def _database() -> str:
    params = {**connection.get_connection_params(), "connect_timeout": HEALTH_CONNECT_TIMEOUT}
    with psycopg.connect(**params) as conn:
        row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
    if not row:
        raise RuntimeError("pgvector extension missing (run migrate)")
    return f"pgvector {row[0]}"


def _redis() -> str:
    conn = queues.connection("default")
    conn.ping()
    return "ping ok"


def _storage() -> str:
    if not minio_client().bucket_exists(bucket_name=settings.S3_BUCKET):
        raise RuntimeError(f"bucket {settings.S3_BUCKET} missing")
    return f"bucket {settings.S3_BUCKET}"


def workers_by_queue() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {name: [] for name in WORKER_QUEUES}
    for worker in queues.live_workers():
        for queue_name in worker.queue_names():
            if queue_name in found:
                found[queue_name].append(worker.name)
    return found


def waiting_jobs(queue_names: list[str]) -> dict[str, int]:
    """How many jobs wait in each queue (queued, not started)."""
    conn = queues.connection("default")
    with conn.pipeline(transaction=False) as pipe:
        for name in queue_names:
            pipe.llen(f"rq:queue:{name}")
        return dict(zip(queue_names, pipe.execute(), strict=True))


def stalled_queues(found: dict[str, list[str]]) -> dict[str, int]:
    """The queues with jobs waiting and no live worker (in ``found``, from ``workers_by_queue``), with how many wait."""
    missing = [name for name, workers in found.items() if not workers]
    return {name: count for name, count in waiting_jobs(missing).items() if count} if missing else {}


def _workers_detail(found: dict[str, list[str]], stalled: dict[str, int]) -> str:
    missing = [name for name, workers in found.items() if not workers]
    if missing:
        named = [f"{name} ({stalled[name]} jobs waiting)" if name in stalled else name for name in missing]
        raise RuntimeError(f"no live worker for queue(s): {', '.join(named)}")
    return ", ".join(f"{name}: {len(workers)}" for name, workers in found.items())


def health_report() -> dict:
    # Work that nothing will run: named for every caller (queue names reveal nothing internal). Empty while Redis is
    # down: the redis part already says so.
    stalled: dict[str, int] = {}

    def workers() -> str:
        found = workers_by_queue()  # read once: the workers part and the stalled queues tell the same moment
        stalled.update(stalled_queues(found))
        return _workers_detail(found, stalled)

    parts = {
        "database": _timed(_database),
        "redis": _timed(_redis),
        "storage": _timed(_storage),
        "workers": _timed(workers),
    }
    report = {"ok": all(p.ok for p in parts.values()), "parts": {k: asdict(v) for k, v in parts.items()}}
    report["stalled_queues"] = stalled
    return report
