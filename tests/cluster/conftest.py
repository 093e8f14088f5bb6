"""One cluster for the module: two web nodes behind haproxy, two chat, two knowledge and a summaries worker.

It runs on the session's PostgreSQL, S3 and Redis servers, but in its own database and Redis database: the session's
other workers (which serve the same queue names, and whose reconcile passes look for unfinished answers and
documents in the test database) never see its jobs or rows. The scripted model server streams answers slowly enough
for a node to be killed in the middle of one. Tests read the cluster's rows with plain SQL.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest
import redis
import websockets
from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families

from protostar.cluster import Cluster, Topology
from protostar.cluster.balancer import haproxy_binary
from tests.conftest import ROOT
from tests.llmserver import LLMTestServer

METRICS_TOKEN = "cluster-scrape-token-0123456789"
CLUSTER_REDIS_DB = 6
NO_BALANCER = "haproxy could not be installed here (scripts/install-balancer.sh needs root and the Debian archive)"
# Run in the cluster's database once: a reader, their session, and a small knowledge base (English and Korean).
SETUP = """
import json
from django.contrib.auth import get_user_model
from django.test import Client
from tests.chat.conftest import CHUNKS
from tests.knowledge.factories import ready_document
ready_document(title="Employee Handbook", chunks=CHUNKS)
user = get_user_model().objects.create_user("cluster-reader", password="pw-123456-long")
client = Client()
client.force_login(user)
print(json.dumps({"user_id": user.pk, "username": user.username,
                  "cookie": "sessionid=" + client.cookies["sessionid"].value}))
"""


def with_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


@dataclass(frozen=True)
class Reader:
    user_id: int
    username: str
    cookie: str


@pytest.fixture(scope="module")
def llm_server() -> Iterator:
    server = LLMTestServer(port=0).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def running(llm_server, tmp_path_factory) -> Iterator[tuple[Cluster, Reader]]:
    """The cluster, started while its first reader and knowledge base are written (both take seconds)."""
    run_dir = tmp_path_factory.mktemp("cluster")
    name = f"protostar_cluster_{os.getpid()}"
    server = with_path(settings.DATABASE_URL, "/postgres")
    redis_url = with_path(settings.REDIS_URL, f"/{CLUSTER_REDIS_DB}")
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    with redis.Redis.from_url(redis_url) as conn:
        conn.flushdb()  # the cluster's own database: nothing of an earlier run may be re-run
    env = {
        **os.environ,
        "DATABASE_URL": with_path(settings.DATABASE_URL, f"/{name}"),
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
        # A killed worker's answer is found within seconds (the defaults suit production, not a bounded test).
        "CHAT_LEASE_SECONDS": "3",
        "CHAT_RECONCILE_SECONDS": "1",
        "INGEST_LEASE_SECONDS": "3",
        "INGEST_RECONCILE_SECONDS": "1",
    }
    manage(env, "migrate", "--no-input", "-v", "0")
    topology = Topology(balancer=haproxy_binary() is not None)
    started = Cluster(root=ROOT, run_dir=run_dir, env=env, redis_url=redis_url, topology=topology)
    setup = subprocess.Popen(
        [sys.executable, "manage.py", "shell", "-c", SETUP], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        started.start()
        output, _ = setup.communicate(timeout=600)
        assert setup.returncode == 0, "writing the reader and the knowledge base failed (see stderr)"
        yield started, Reader(**json.loads(output.strip().splitlines()[-1]))
    finally:
        if setup.poll() is None:
            setup.kill()
        started.stop()
        with redis.Redis.from_url(redis_url) as conn:
            conn.flushdb()
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def cluster(running) -> Cluster:
    return running[0]


@pytest.fixture(scope="module")
def reader(running) -> Reader:
    """A signed-in user of the cluster; every document of its knowledge base is theirs to read."""
    return running[1]


def manage(env: dict[str, str], *args: str, timeout: float = 600) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {args[0]} failed: {result.stderr[-2000:]}")
    return result.stdout


def rows(cluster: Cluster, sql: str, *params) -> list[tuple]:
    """Rows of the cluster's database (its DATABASE_URL)."""
    with psycopg.connect(cluster.env["DATABASE_URL"]) as conn:
        return conn.execute(sql, params).fetchall()


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
