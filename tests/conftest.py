"""Shared fixtures: the real servers are already up (tests/bootstrap.py); these add workers and helpers."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.test import override_settings

from tests.llmserver import LLMTestServer

ROOT = Path(__file__).resolve().parents[1]


class FastPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    """The production algorithm and name with a single iteration. Every test creates users, and the real iteration
    count makes each password hash a noticeable share of a test on a loaded machine. A hash stores its iteration
    count, so the servers and workers the tests start (with the production hasher) still verify these passwords."""

    iterations = 1


@pytest.fixture(scope="session", autouse=True)
def fast_password_hashing() -> Iterator[None]:
    with override_settings(PASSWORD_HASHERS=["tests.conftest.FastPBKDF2PasswordHasher", *settings.PASSWORD_HASHERS]):
        yield


@pytest.fixture(scope="session", autouse=True)
def flush_outlasts_a_deadlock() -> Iterator[None]:
    """A transactional test ends by truncating every table, while the worker processes the suite shares may still be
    in a transaction on the rows it left (a memory job, an answer's last write): PostgreSQL then breaks the deadlock
    by aborting one side, sometimes the truncation. The worker's side goes on, so the truncation is tried again."""
    from django.core.management.base import CommandError
    from django.core.management.commands import flush
    from django.db import OperationalError

    original = flush.Command.handle

    def handle(self, *args, **options):
        for attempt in range(5):
            try:
                return original(self, *args, **options)
            except CommandError as exc:
                deadlock = isinstance(exc.__cause__, OperationalError) and "deadlock" in str(exc.__cause__)
                if not deadlock or attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))

    flush.Command.handle = handle
    yield
    flush.Command.handle = original


def worker_database_url() -> str:
    """The URL of the database pytest-django created, for worker processes started by tests."""
    from django.db import connection

    base = settings.DATABASE_URL.rsplit("/", 1)[0]
    return f"{base}/{connection.settings_dict['NAME']}"


class WorkerProcess:
    """A real ``manage.py rqworker`` process bound to the test database."""

    def __init__(
        self,
        queues: list[str],
        *,
        log_path: Path,
        extra_env: dict[str, str] | None = None,
        worker_class: str | None = None,
    ) -> None:
        self.queues = queues
        self.worker_class = worker_class
        self.log_path = log_path
        self.extra_env = extra_env or {}
        self.process: subprocess.Popen | None = None

    def start(self) -> WorkerProcess:
        env = {**os.environ, "DATABASE_URL": worker_database_url(), **self.extra_env}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        command = [sys.executable, "manage.py", "rqworker", *self.queues]
        command += ["--worker-class", self.worker_class] if self.worker_class else []
        command += ["--with-scheduler"]
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            self._wait_registered()
        except BaseException:
            # Nobody holds a worker that failed to start: stop it, or it would live on and take other tests' jobs.
            self.stop()
            raise
        return self

    # A worker registers once Django and its apps are imported: seconds on a quiet machine, but far longer on a
    # loaded one (several suites and benchmarks sharing two cores: over a minute), where 30 s was too short.
    def _wait_registered(self, timeout: float = 300) -> None:
        import django_rq
        from rq import Worker

        conn = django_rq.get_connection("default")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited early: {self.log_path.read_text()[-2000:]}")
            for worker in Worker.all(connection=conn):
                if worker.pid == self.process.pid:
                    return
            time.sleep(0.1)
        raise RuntimeError("worker did not register in time")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._log.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The fault suite last: it stops and starts the shared PostgreSQL and Redis under everything else's feet."""
    items.sort(key=lambda item: "tests/faults/" in str(item.path).replace(os.sep, "/"))


@pytest.fixture(scope="session")
def worker_factory(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator:
    started: list[WorkerProcess] = []
    logs = tmp_path_factory.mktemp("workers")

    def start(queues: list[str], worker_class: str | None = None, **extra_env: str) -> WorkerProcess:
        with django_db_blocker.unblock():
            log_path = logs / f"{'-'.join(queues)}-{len(started)}.log"
            worker = WorkerProcess(queues, log_path=log_path, extra_env=extra_env, worker_class=worker_class)
            started.append(worker.start())
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture(scope="session")
def live_workers(worker_factory) -> WorkerProcess:
    """One real worker process for the knowledge, summaries and default queues, shared by the session.

    The chat queue is served by the threaded chat worker that the chat tests start with their own LLM settings.
    """
    return worker_factory(["knowledge", "summaries", "default"], worker_class="knowledge.worker.KnowledgeWorker")


def frozen_startup_objects(worker: WorkerProcess, timeout: float = 60.0) -> int:
    """How many start-up objects ``worker`` left out of garbage collection, from its log. A worker registers before
    its warm-up (the embedder takes seconds to load) and freezes after it, so this waits for the line."""

    def logged() -> re.Match | None:
        return re.search(r"(\d+) objects loaded at start-up are left out", worker.log_path.read_text())

    return int(wait_until(logged, timeout=timeout, interval=0.2, message="the start-up freeze").group(1))


def wait_until(predicate, *, timeout: float = 30.0, interval: float = 0.1, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


CHAT_WORKER_CLASS = "chat.worker.ThreadedWorker"


@pytest.fixture(scope="session")
def llm_server() -> Iterator[LLMTestServer]:
    server = LLMTestServer(port=0).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def chat_worker(django_db_setup, django_db_blocker, llm_server, tmp_path_factory) -> Iterator[WorkerProcess]:
    """The one process serving the ``chat`` queue in the whole session (the Procfile's threaded class).

    Every test that needs a live chat worker shares it: a second one would take half of the chat tests' jobs, and
    each start loads the embedder again."""
    env = {
        "LLM_BASE_URL": llm_server.base_url,
        "CHAT_MODEL_BACKEND": "protostar.llm.openai.OpenAIChatModel",
        "LLM_MAX_RETRIES": "0",
        "LLM_TIMEOUT": "2",
        "CHAT_WORKER_THREADS": "32",
    }
    log = tmp_path_factory.mktemp("chat-worker") / "chat.log"
    with django_db_blocker.unblock():
        worker = WorkerProcess(["chat"], log_path=log, extra_env=env, worker_class=CHAT_WORKER_CLASS).start()
    yield worker
    worker.stop()


@pytest.fixture(scope="session")
def api_server(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator:
    """A real daphne for the HTTP API tests (the whole ASGI app on the test database)."""
    from tests.live import Daphne

    with django_db_blocker.unblock():
        server = Daphne(tmp_path_factory.mktemp("api-daphne") / "daphne.log").start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def forget_per_user_counters() -> None:
    """User ids start again with each test database: rate windows, fair-queue slots and socket counts left in Redis
    by an earlier test must not count against a new user with the same id."""
    from chat.streams import sync_client

    conn = sync_client()
    for pattern in ("chat:rate:*", "chat:fair:*", "chat:sockets:*"):
        keys = list(conn.scan_iter(match=pattern, count=1000))
        if keys:
            conn.delete(*keys)
