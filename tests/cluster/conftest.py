"""One cluster for the module: two web nodes behind haproxy, two chat, two knowledge and a summaries worker.

It runs on the session's PostgreSQL (the test database), S3 and Redis server, but on its own Redis database, so the
session's other workers (which serve the same queue names on database 0) never take its jobs. The scripted model
server streams answers slowly enough for a node to be killed in the middle of one.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
import redis
import websockets
from prometheus_client.parser import text_string_to_metric_families

from protostar.cluster import Cluster, Topology
from protostar.cluster.balancer import haproxy_binary
from tests.conftest import ROOT, worker_database_url

METRICS_TOKEN = "cluster-scrape-token-0123456789"
CLUSTER_REDIS_DB = 1
NO_BALANCER = "haproxy could not be installed here (scripts/install-balancer.sh needs root and the Debian archive)"


def redis_url_with_db(url: str, db: int) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


@pytest.fixture(scope="module")
def llm_server() -> Iterator:
    from protostar.llm.testserver import LLMTestServer

    server = LLMTestServer(port=0).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def cluster(django_db_setup, django_db_blocker, llm_server, tmp_path_factory) -> Iterator[Cluster]:
    from django.conf import settings

    run_dir = tmp_path_factory.mktemp("cluster")
    redis_url = redis_url_with_db(settings.REDIS_URL, CLUSTER_REDIS_DB)
    with redis.Redis.from_url(redis_url) as conn:
        conn.flushdb()  # the cluster's own database: nothing of an earlier run may be re-run
    with django_db_blocker.unblock():
        database_url = worker_database_url()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "PROMETHEUS_MULTIPROC_DIR": str(run_dir / "metrics"),
        "METRICS_TOKEN": METRICS_TOKEN,
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
        "LLM_BASE_URL": llm_server.base_url,
        "CHAT_MODEL_BACKEND": "protostar.llm.openai.OpenAIChatModel",
        "CHAT_QUERY_REWRITER": "chat.rewriting.RecentQuestionRewriter",
        "SUMMARIZER_BACKEND": "summaries.summarizers.ExtractiveSummarizer",
        "LLM_MAX_RETRIES": "0",
        "CHAT_WORKER_THREADS": "16",
        "DB_POOL_MAX_SIZE": "4",
    }
    topology = Topology(balancer=haproxy_binary() is not None)
    started = Cluster(root=ROOT, run_dir=run_dir, env=env, redis_url=redis_url, topology=topology).start()
    yield started
    started.stop()


def cluster_env(cluster: Cluster) -> dict[str, str]:
    return dict(cluster.env)


def scrape(cluster: Cluster) -> dict[tuple[str, tuple], float]:
    """Every sample of ``/metrics`` through the balancer (the scraper's token), keyed by name and labels."""
    response = httpx.get(f"{cluster.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10)
    response.raise_for_status()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def log_records(path: Path) -> list[dict]:
    """The JSON lines of a process's log (other lines, such as a traceback's, are skipped)."""
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("{"):
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
    return records


class Socket:
    """A chat socket of a real client: every event it received, and a way to wait for a condition on them."""

    def __init__(self, connection, served_by: str | None) -> None:
        self.connection = connection
        self.served_by = served_by
        self.events: list[dict] = []
        self.closed = asyncio.Event()
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, base_url: str, cookie: str) -> Socket:
        ws_url = base_url.replace("http://", "ws://") + "/ws/chat/"
        origin = base_url
        connection = await websockets.connect(
            ws_url, additional_headers={"Cookie": cookie, "Origin": origin}, open_timeout=10, max_size=None
        )
        return cls(connection, connection.response.headers.get("X-Served-By"))

    async def _read(self) -> None:
        try:
            async for frame in self.connection:
                async with self._changed:
                    self.events.append(json.loads(frame))
                    self._changed.notify_all()
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed.set()
            async with self._changed:
                self._changed.notify_all()

    async def send(self, payload: dict) -> None:
        await self.connection.send(json.dumps(payload, ensure_ascii=False))

    async def wait_for(self, predicate, timeout: float = 60.0):
        """The first truthy ``predicate(events)``; fails after ``timeout`` s or when the socket closed first."""

        async def until() -> object:
            async with self._changed:
                while True:
                    result = predicate(self.events)
                    if result or self.closed.is_set():
                        return result
                    await self._changed.wait()

        result = await asyncio.wait_for(until(), timeout)
        if not result:
            raise AssertionError(f"socket closed before the condition held; events: {self.events[-5:]}")
        return result

    def of(self, message_id: int) -> list[dict]:
        return [event for event in self.events if event.get("message") == message_id and "seq" in event]

    async def close(self) -> None:
        await self.connection.close()
        await self._reader


def text_of(events: list[dict]) -> str:
    return "".join(event["text"] for event in events if event["type"] == "token")


def ended(message_id: int):
    return lambda events: any(e.get("message") == message_id and e["type"] in ("end", "error") for e in events)
