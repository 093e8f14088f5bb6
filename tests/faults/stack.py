"""A whole Protostar stack in processes of its own, for causing faults for real: daphne, chat and knowledge workers
(killed with SIGKILL when asked), on their own PostgreSQL database and Redis database of the test servers, which the
launcher stops and starts. Used by ``tests/faults`` and ``bench/faults.py``.

The stack's own database and Redis database keep it apart from the session's workers: their reconciles must not
take over this stack's answers and documents (nor this stack's those of the session).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import redis

from protostar.services.launcher import Launcher
from protostar.services.process import find_free_ports, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
STACK_REDIS_DB = 7
FINAL = {"end", "error"}


def wait_for(predicate: Callable[[], Any], *, timeout: float, message: str, interval: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns something true; fail after ``timeout`` seconds saying what was awaited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {message}")


def with_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL to the process and its children (a worker's scheduler), as when its container is killed: no
        clean-up of any kind, and no orphan left running."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(10)

    def stop(self) -> None:
        if self.alive():
            self.popen.terminate()
            try:
                self.popen.wait(60)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        with contextlib.suppress(ProcessLookupError):  # a scheduler child left behind
            os.killpg(self.popen.pid, signal.SIGKILL)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@dataclass
class FaultStack:
    data_dir: Path
    database_url: str  # the test server; the stack makes its own database on it
    redis_url: str
    log_dir: Path
    settings: dict[str, str] = field(default_factory=dict)
    processes: list[Proc] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.database_name = f"protostar_faults_{os.getpid()}"
        self.stack_database_url = with_path(self.database_url, f"/{self.database_name}")
        self.stack_redis_url = with_path(self.redis_url, f"/{STACK_REDIS_DB}")
        self.launcher = Launcher(self.data_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)

    # -- set-up and tear-down -----------------------------------------------------------------------------
    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PROTOSTAR_DATA_DIR": str(self.data_dir),
            "DATABASE_URL": self.stack_database_url,
            "REDIS_URL": self.stack_redis_url,
            **self.settings,
        }

    def create(self) -> FaultStack:
        self._drop_database()
        with psycopg.connect(with_path(self.database_url, "/postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.database_name}"')
        self.redis().flushdb()
        self.manage("migrate", "--no-input", "-v", "0")
        return self

    def destroy(self) -> None:
        for proc in self.processes:
            proc.stop()
        self.redis().flushdb()
        self._drop_database()

    def _drop_database(self) -> None:
        with psycopg.connect(with_path(self.database_url, "/postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.database_name}" WITH (FORCE)')

    def manage(self, *args: str, timeout: float = 600) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    # -- processes ------------------------------------------------------------------------------------------
    def _spawn(self, name: str, command: list[str], extra_env: dict[str, str] | None = None) -> Proc:
        log_path = self.log_dir / f"{name}-{len(self.processes)}.log"
        env = {**self.env, **(extra_env or {})}
        with log_path.open("ab") as log:
            popen = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        proc = Proc(name, popen, log_path)
        self.processes.append(proc)
        return proc

    def start_daphne(self) -> tuple[Proc, int]:
        port = find_free_ports(1)[0]
        daphne = str(Path(sys.executable).parent / "daphne")
        proc = self._spawn("daphne", [daphne, "-b", "127.0.0.1", "-p", str(port), "protostar.asgi:application"])
        if not wait_for_port(port, timeout=60):
            raise RuntimeError(f"daphne did not listen: {proc.log()[-2000:]}")
        return proc, port

    def start_worker(self, kind: str, **settings: str) -> Proc:
        """A chat or knowledge worker as the Procfile runs it (with ``settings`` in its environment), once it has
        loaded everything (its warm-up logged)."""
        worker_class = {"chat": "chat.worker.ThreadedWorker", "knowledge": "knowledge.worker.KnowledgeWorker"}[kind]
        command = [sys.executable, "manage.py", "rqworker", kind, "--worker-class", worker_class, "--with-scheduler"]
        ready_line = "left out of garbage collection"
        proc = self._spawn(kind, command, settings)
        wait_for(
            lambda: ready_line in proc.log() or not proc.alive(), timeout=300, message=f"the {kind} worker's warm-up"
        )
        if not proc.alive():
            raise RuntimeError(f"the {kind} worker exited: {proc.log()[-3000:]}")
        return proc

    # -- the servers ----------------------------------------------------------------------------------------
    def restart(self, service: str, *, down_for: Callable[[], None] | None = None) -> None:
        """Stop ``postgres`` or ``redis`` through the launcher, run ``down_for`` while it is down, start it again."""
        self.launcher.down([service])
        try:
            if down_for is not None:
                down_for()
        finally:
            self.launcher.up([service])

    def worker_running(self, job_id: str) -> Proc:
        """The stack's process running the job ``job_id`` now."""
        from rq.job import Job
        from rq.worker import Worker

        conn = self.redis()
        name = wait_for(lambda: Job.fetch(job_id, connection=conn).worker_name, timeout=10, message="the job's worker")
        pid = Worker.find_by_key(Worker.redis_worker_namespace_prefix + name, connection=conn).pid
        return next(proc for proc in self.processes if proc.pid == pid)

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.stack_redis_url, socket_timeout=10)

    def sql(self, query: str, *params: Any) -> list[tuple]:
        with psycopg.connect(self.stack_database_url, autocommit=True, connect_timeout=5) as conn:
            return conn.execute(query, params).fetchall()

    def message(self, message_id: int) -> dict[str, Any]:
        columns = ("status", "content", "error_code", "error", "error_detail", "attempt_count")
        row = self.sql(f"SELECT {', '.join(columns)} FROM chat_message WHERE id = %s", message_id)[0]
        return dict(zip(columns, row, strict=True))

    def unfinished_answers(self) -> int:
        return self.sql("SELECT count(*) FROM chat_message WHERE status IN ('pending', 'streaming')")[0][0]

    def document(self, document_id: int) -> dict[str, Any]:
        columns = ("status", "error", "attempt_count", "progress_done", "chunk_count")
        row = self.sql(f"SELECT {', '.join(columns)} FROM knowledge_document WHERE id = %s", document_id)[0]
        return dict(zip(columns, row, strict=True))

    def unfinished_documents(self) -> int:
        return self.sql("SELECT count(*) FROM knowledge_document WHERE status IN ('queued', 'processing')")[0][0]

    def session_cookie(self, username: str) -> str:
        """A signed-in session of a new user of the stack's database (made here: a ``manage.py`` process per user
        would cost seconds on a busy machine). The stack's processes share this process's SECRET_KEY."""
        from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
        from django.contrib.auth.hashers import make_password
        from django.contrib.sessions.backends.db import SessionStore
        from django.utils import timezone
        from django.utils.crypto import get_random_string

        user = get_user_model()(username=username, password=make_password("pw-123456"))
        now = timezone.now()
        (user_id,) = self.sql(
            "INSERT INTO auth_user (username, password, is_superuser, is_staff, is_active, first_name, last_name,"
            " email, date_joined) VALUES (%s, %s, false, false, true, '', '', '', %s) RETURNING id",
            username,
            user.password,
            now,
        )[0]
        data = {
            SESSION_KEY: str(user_id),
            BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend",
            HASH_SESSION_KEY: user.get_session_auth_hash(),
        }
        key = get_random_string(32, "abcdefghijklmnopqrstuvwxyz0123456789")
        self.sql(
            "INSERT INTO django_session (session_key, session_data, expire_date) VALUES (%s, %s, %s) RETURNING 1",
            key,
            SessionStore().encode(data),
            now + timedelta(days=1),
        )
        return f"sessionid={key}"

    def ingest(self, path: Path) -> int:
        row = json.loads(self.manage("ingest", str(path), "--json").strip().splitlines()[-1])
        return int(row["id"])


class Socket:
    """A browser's chat socket to the stack's daphne, keeping every event it received."""

    def __init__(self, port: int, cookie: str) -> None:
        self.url = f"ws://127.0.0.1:{port}/ws/chat/"
        self.cookie = cookie
        self.events: list[dict[str, Any]] = []
        self._ws: Any = None

    async def __aenter__(self) -> Socket:
        from websockets.asyncio.client import connect

        # Events pile up unread while a test starts or kills processes: an unbounded buffer keeps the connection
        # reading (a full one stops reading, pongs included), and no keep-alive pings on a loopback test socket.
        self._ws = await connect(
            self.url,
            origin="http://127.0.0.1",
            additional_headers={"Cookie": self.cookie},
            open_timeout=20,
            max_queue=None,
            ping_interval=None,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._ws.close()

    async def send(self, payload: dict[str, Any]) -> None:
        await self._ws.send(json.dumps(payload, ensure_ascii=False))

    async def receive(self, timeout: float) -> dict[str, Any]:
        event = json.loads(await asyncio.wait_for(self._ws.recv(), timeout))
        self.events.append(event)
        return event

    async def ask(self, content: str, client_id: str) -> int:
        await self.send({"type": "ask", "conversation": None, "content": content, "client_id": client_id})
        event = await self.receive(timeout=20)
        assert event["type"] == "accepted", event
        return event["message"]

    async def until(self, message_id: int, predicate: Callable[[dict], bool], timeout: float) -> dict[str, Any]:
        """The first event of ``message_id`` that satisfies ``predicate``, received already or from now on."""
        for event in self.of(message_id):
            if predicate(event):
                return event
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"timed out after {timeout:g} s; received {self.events[-5:]}")
            event = await self.receive(timeout=left)
            if event.get("message") == message_id and predicate(event):
                return event

    async def until_tokens(self, message_id: int, count: int, timeout: float = 30) -> None:
        await self.until(message_id, lambda _: self.token_count(message_id) >= count, timeout)

    async def until_final(self, message_id: int, timeout: float) -> dict[str, Any]:
        return await self.until(message_id, lambda event: event["type"] in FINAL, timeout)

    def of(self, message_id: int) -> list[dict[str, Any]]:
        return [event for event in self.events if event.get("message") == message_id]

    def token_count(self, message_id: int) -> int:
        return sum(event["type"] == "token" for event in self.of(message_id))

    def shown_text(self, message_id: int) -> str:
        """What a browser shows for the answer: its tokens after the last ``reset``."""
        text: list[str] = []
        for event in self.of(message_id):
            if event["type"] == "reset":
                text.clear()
            elif event["type"] == "token":
                text.append(event["text"])
        return "".join(text)

    def seqs(self, message_id: int) -> list[int]:
        return [event["seq"] for event in self.of(message_id) if "seq" in event]
