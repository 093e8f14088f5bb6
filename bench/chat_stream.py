"""Chat streaming: per-token relay latency from the model server to N browsers, added time-to-first-token, lost
tokens and total memory, through the real stack (daphne, the threaded chat worker, Redis, PostgreSQL, S3).

    .venv/bin/python bench/chat_stream.py [--n 1,10,100] [--tps 30] [--tokens 200] [--ramp 2] [--burst] [--tap]

Processes: the embedded servers (``PROTOSTAR_DATA_DIR``, default ``.data/bench-chat``), one daphne on a free loopback
port, ``--workers`` chat worker processes (``chat.worker.ThreadedWorker``, ``--threads`` jobs each), and the scripted
LLM server in its own process. The LLM server is the stock test server with an emission log: every content chunk is
logged as (question tag, token text, ``x_emitted_at``). Each answer is ``t0001 t0002 …``, so every token text is
unique within an answer and the client looks its emission time up by (its question tag, text) after the run; a
token that never arrives, arrives twice, out of order or with other text is counted as lost/disordered.

Relay = client receipt − model emission, per token. Added TTFT = model request received (server log) − ask sent.
Memory = peak of the summed RSS of daphne, the worker(s) and their children, postgres (all backends), redis and the
S3 server, sampled every 0.25 s. Baseline: XADD→XREAD BLOCK on the same Redis (one writer, one blocked reader).
``--tap`` also reads every answer's Redis stream from the bench process, splitting relay into model→Redis (worker)
and Redis→browser (consumer + daphne); it adds N readers of load, so tapped rows are for diagnosis.

Diagnosis: ``--profile`` samples the on-CPU Python stacks of daphne and the workers per round
(``<data dir>/logs/profile-*.json``); ``--patch NAME`` runs daphne/workers with an experimental variant of
``chat`` code (see ``PATCHES``; nothing under ``chat/`` changes); ``--env``/``--worker-env`` set settings such as
``DB_CONN_MAX_AGE`` or ``OMP_NUM_THREADS``. Results: ``docs/benchmarks.md`` ("Chat streaming").
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TAG = re.compile(r"\[bench:([\w-]+)\]")
QUESTION = "How many days of paid leave do full-time employees get? [bench:{tag}]"
USERS = "bench-chat-{i:03d}"
KB_CHUNKS = [
    ("Leave policy", "Full-time employees accrue 1.5 days of paid leave per month, up to 18 days a year."),
    ("Remote work", "Employees may work remotely up to three days a week with their manager's approval."),
    ("휴가 규정", "정규직 직원은 매월 1.5일의 유급휴가가 발생하며 연간 최대 18일까지 적립됩니다."),
]
MEMORY_SAMPLE_SECONDS = 0.25


def reply_text(tokens: int) -> str:
    return " ".join(f"t{i:04d}" for i in range(1, tokens + 1))


# --- the LLM server process -------------------------------------------------------------------------------------


def serve_llm(port: int) -> None:
    """The stock scripted server plus an emission log (``GET /_emissions``, ``POST /_emissions_clear``)."""
    from protostar.llm.testserver import LLMTestServer
    from protostar.llm.testserver.handler import Handler, Server

    log: list[tuple[str, str, float]] = []
    lock = threading.Lock()

    class EmissionHandler(Handler):
        bench_tag = ""

        def _chat(self, body: dict[str, Any]) -> None:
            users = [m for m in body.get("messages") or [] if m.get("role") == "user"]
            found = TAG.search(str(users[-1].get("content", ""))) if users else None
            self.bench_tag = found.group(1) if found else ""
            super()._chat(body)

        def _sse(self, payload: Any) -> None:
            super()._sse(payload)
            if isinstance(payload, dict) and "x_emitted_at" in payload:
                with lock:
                    log.append((self.bench_tag, payload["choices"][0]["delta"]["content"], payload["x_emitted_at"]))

        def do_GET(self) -> None:
            if self.path == "/_emissions":
                with lock:
                    entries = list(log)
                self._send_json(200, entries)
            else:
                super().do_GET()

        def do_POST(self) -> None:
            if self.path == "/_emissions_clear":
                self._read_json()
                with lock:
                    log.clear()
                self._send_json(200, {"ok": True})
            else:
                super().do_POST()

    class EmissionServer(LLMTestServer):
        def start(self) -> EmissionServer:
            self.stopping.clear()
            self._server = Server((self.host, self.port), EmissionHandler)
            self._server.owner = self
            self.port = self._server.server_address[1]
            self._thread = threading.Thread(target=self._server.serve_forever, name="llm-test-server", daemon=True)
            self._thread.start()
            return self

    server = EmissionServer("127.0.0.1", port).start()
    done = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: done.set())
    print(server.base_url, flush=True)
    while not done.wait(0.5):
        pass
    server.stop()


def control(base_url: str, path: str, payload: dict | None = None) -> Any:
    import urllib.request

    root = base_url.removesuffix("/v1")
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(root + path, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


# --- an on-CPU sampling profiler for the stack's processes (diagnosis) ------------------------------------------


PATCHES = {
    "db-threads": "the consumer's ORM calls on the default executor (thread_sensitive=False) instead of one thread",
    "snapshot-recheck": "the consumer replays a stored answer only if the live stream is still absent after the read",
    "coalesce": "the job appends every piece already queued by the model reader in one stream entry",
}


def apply_patches(names: list[str]) -> None:
    """Experimental variants of ``chat.consumers`` for measuring proposals (the code in ``chat/`` is unchanged)."""
    if not names:
        return
    import django

    django.setup()
    from channels.db import DatabaseSyncToAsync

    from chat import consumers, streams

    if "db-threads" in names:
        consumers.database_sync_to_async = lambda func: DatabaseSyncToAsync(func, thread_sensitive=False)
    if "snapshot-recheck" in names:
        original = consumers.ChatConsumer._send_snapshot

        async def _send_snapshot(self, message_id: int) -> bool:
            message = await consumers.database_sync_to_async(consumers.selectors.message_get)(message_id=message_id)
            if message is None or not message.is_terminal:
                return False
            if await self.redis.exists(streams.stream_key(message_id)):
                return False  # the answer was written while the row was read: follow the live stream
            return await original(self, message_id)

        consumers.ChatConsumer._send_snapshot = _send_snapshot
    if "coalesce" in names:
        import queue

        from protostar.llm.openai import OpenAITokenStream

        def __iter__(self):
            pending = None
            while not self._done:
                kind, value = pending or self._queue.get()
                pending = None
                if self._closed.is_set():
                    break
                if kind == "piece":
                    parts = [value]
                    while True:  # a backlog becomes one append (one Redis entry, one frame) instead of one each
                        try:
                            item = self._queue.get_nowait()
                        except queue.Empty:
                            break
                        if item[0] != "piece":
                            pending = item
                            break
                        parts.append(item[1])
                    yield "".join(parts)
                elif kind == "error":
                    self._done = True
                    raise value
                else:
                    break
            self._done = True

        OpenAITokenStream.__iter__ = __iter__
    print(f"bench patches applied: {names}", file=sys.stderr, flush=True)


def run_wrapped(argv: list[str]) -> None:
    """Run daphne or ``manage.py rqworker`` in this process, with ``BENCH_PATCHES`` applied and, when
    ``BENCH_PROFILE`` names a file, a sampler that charges each thread's CPU time (``pthread_getcpuclockid``) since
    the last sample to its current Python stack. SIGUSR2 writes what was sampled since the previous SIGUSR2 to
    ``<out>-<label>.json`` (label read from ``<out>.label``) and starts afresh."""
    import collections

    apply_patches([name for name in os.environ.get("BENCH_PATCHES", "").split(",") if name])
    if not os.environ.get("BENCH_PROFILE"):
        return launch(argv)
    out = Path(os.environ["BENCH_PROFILE"])

    state: dict[str, Any] = {}
    last: dict[int, float] = {}
    lock = threading.Lock()

    def reset() -> None:
        state.update(
            self_cpu=collections.Counter(),
            inclusive=collections.Counter(),
            by_thread=collections.Counter(),
            started=time.monotonic(),
            cpu=time.process_time(),
        )

    def group(name: str) -> str:
        return re.sub(r"[-_]?\d+(_\d+)?$", "", name)

    def where(frame) -> str:
        return f"{Path(frame.f_code.co_filename).name}:{frame.f_code.co_name}"

    def sample() -> None:
        me = threading.get_ident()
        while True:
            time.sleep(0.01)
            frames = sys._current_frames()
            names = {t.ident: t.name for t in threading.enumerate()}
            with lock:
                for ident, frame in frames.items():
                    if ident == me:
                        continue
                    try:
                        cpu = time.clock_gettime(time.pthread_getcpuclockid(ident))
                    except (OSError, OverflowError):
                        continue
                    spent, last[ident] = cpu - last.get(ident, cpu), cpu
                    if spent <= 0:
                        continue
                    state["by_thread"][group(names.get(ident, "?"))] += spent
                    state["self_cpu"][where(frame)] += spent
                    seen = set()
                    while frame is not None:
                        key = where(frame)
                        if key not in seen:
                            seen.add(key)
                            state["inclusive"][key] += spent
                        frame = frame.f_back

    def dump(*_: Any) -> None:
        label_file = out.with_suffix(".label")
        label = label_file.read_text().strip() if label_file.exists() else "final"

        def top(counter):
            return [(k, round(v, 3)) for k, v in counter.most_common(80)]

        with lock:
            report = {
                "argv": argv,
                "label": label,
                "wall_s": time.monotonic() - state["started"],
                "process_cpu_s": time.process_time() - state["cpu"],
                "by_thread_s": top(state["by_thread"]),
                "self_s": top(state["self_cpu"]),
                "inclusive_s": top(state["inclusive"]),
            }
            reset()
        out.with_name(f"{out.stem}-{label}.json").write_text(json.dumps(report, indent=1))

    reset()
    signal.signal(signal.SIGUSR2, dump)
    threading.Thread(target=sample, name="bench-sampler", daemon=True).start()
    launch(argv)


def launch(argv: list[str]) -> None:
    if argv[0] == "daphne":
        from daphne.cli import CommandLineInterface

        sys.argv = argv
        CommandLineInterface.entrypoint()
    else:
        from django.core.management import execute_from_command_line

        execute_from_command_line(["manage.py", *argv])


def profile_mark(stack: Stack, label: str) -> None:
    """Make every profiled process write what it sampled since the last mark as ``label`` (see ``run_profiled``)."""
    if not stack.profile:
        return
    processes = {"daphne": stack.daphne, **{f"worker-{i}": w for i, w in enumerate(stack.workers)}}
    for name, process in processes.items():
        out = stack.data_dir / "logs" / f"profile-{name}.json"
        out.with_suffix(".label").write_text(label)
        os.kill(process.pid, signal.SIGUSR2)
    time.sleep(0.5)


# --- the stack --------------------------------------------------------------------------------------------------


@dataclass
class Stack:
    data_dir: Path
    llm: subprocess.Popen | None = None
    llm_url: str = ""
    daphne: subprocess.Popen | None = None
    port: int = 0
    workers: list[subprocess.Popen] = field(default_factory=list)
    profile: bool = False
    patches: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)  # for daphne and the workers
    worker_env: dict[str, str] = field(default_factory=dict)

    def command(self, name: str, argv: list[str]) -> tuple[list[str], dict[str, str]]:
        """``argv`` and its extra environment; wrapped (``run_wrapped``) when profiling or patching."""
        env = dict(self.env)
        if not self.profile and not self.patches:
            return argv, env
        if self.profile:
            env["BENCH_PROFILE"] = str(self.data_dir / "logs" / f"profile-{name}.json")
        env["BENCH_PATCHES"] = ",".join(self.patches)
        wrapped = ["daphne", *argv[1:]] if argv[0].endswith("daphne") else argv[2:]  # drop python / manage.py
        return [sys.executable, str(Path(__file__).resolve()), "wrapped", "--", *wrapped], env

    def stop(self) -> None:
        from bench.stack import stop

        for process in [self.daphne, *self.workers, self.llm]:
            if process is not None and process.poll() is None:
                stop(process)


def start_llm(stack: Stack) -> None:
    stack.llm = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "llm-server"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=(stack.data_dir / "logs" / "bench-llm.log").open("w"),
        text=True,
    )
    stack.llm_url = stack.llm.stdout.readline().strip()
    if not stack.llm_url.startswith("http://127.0.0.1:"):
        raise RuntimeError(f"LLM test server did not start (got {stack.llm_url!r})")


def start_workers(stack: Stack, count: int, threads: int) -> None:
    import django_rq
    from rq import Worker

    env = {
        **os.environ,
        "LLM_BASE_URL": stack.llm_url,
        "CHAT_MODEL_BACKEND": "protostar.llm.openai.OpenAIChatModel",
        "CHAT_WORKER_THREADS": str(threads),
        "LOG_LEVEL": "WARNING",
        **stack.worker_env,
    }
    # stack.command() adds the environment shared with daphne (--env) and the wrapper's settings.
    args = [sys.executable, "manage.py", "rqworker", "chat", "--worker-class", "chat.worker.ThreadedWorker"]
    for index in range(count):
        log = (stack.data_dir / "logs" / f"bench-chat-worker-{index}.log").open("w")
        command, extra = stack.command(f"worker-{index}", args)
        process = subprocess.Popen(command, cwd=ROOT, env={**env, **extra}, stdout=log, stderr=subprocess.STDOUT)
        stack.workers.append(process)
    conn = django_rq.get_connection("chat")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        pids = {w.pid for w in Worker.all(connection=conn)}
        if all(p.pid in pids for p in stack.workers):
            return
        if any(p.poll() is not None for p in stack.workers):
            raise RuntimeError("a chat worker exited during start-up (see logs/bench-chat-worker-*.log)")
        time.sleep(0.1)
    raise RuntimeError("chat workers did not register")


def start_daphne(stack: Stack) -> None:
    from protostar.services.process import find_free_ports, wait_for_port

    stack.port = find_free_ports(1)[0]
    log = (stack.data_dir / "logs" / "bench-daphne.log").open("w")
    daphne = str(Path(sys.executable).parent / "daphne")
    command, extra = stack.command(
        "daphne", [daphne, "-b", "127.0.0.1", "-p", str(stack.port), "protostar.asgi:application"]
    )
    env = {**os.environ, "LOG_LEVEL": "WARNING", **extra}
    stack.daphne = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    if not wait_for_port(stack.port, timeout=60):
        raise RuntimeError("daphne did not start listening (see logs/bench-daphne.log)")


def ensure_knowledge_base() -> None:
    """Three ready chunks every user may read (like the chat tests), so each answer runs a real retrieval."""
    from knowledge.lexical import search_terms_text
    from knowledge.models import Chunk, Document
    from protostar.llm.registry import get_embedder

    document, created = Document.objects.get_or_create(
        sha256="bench-chat-stream".ljust(64, "0"),
        defaults={
            "title": "Employee Handbook",
            "original_filename": "handbook.txt",
            "file": "documents/bench-chat-stream",
            "content_type": "text/plain",
            "size": 1000,
            "status": Document.Status.READY,
        },
    )
    if not created and document.chunks.exists():
        return
    vectors = get_embedder().embed_passages([text for _, text in KB_CHUNKS])
    offset = 0
    for ordinal, ((section, text), vector) in enumerate(zip(KB_CHUNKS, vectors, strict=True)):
        Chunk.objects.create(
            document=document,
            ordinal=ordinal,
            text=text,
            page_start=ordinal + 1,
            page_end=ordinal + 1,
            section_path=section,
            char_start=offset,
            char_end=offset + len(text),
            token_count=len(text.split()),
            embedding=vector,
            search_terms=search_terms_text(text),
        )
        offset += len(text)


def session_cookies(count: int) -> list[str]:
    from django.contrib.auth import get_user_model
    from django.test import Client

    cookies = []
    for i in range(count):
        user, _ = get_user_model().objects.get_or_create(username=USERS.format(i=i))
        client = Client()
        client.force_login(user)
        cookies.append(f"sessionid={client.cookies['sessionid'].value}")
    return cookies


def forget_chat_state() -> None:
    """Jobs and streams left by an interrupted earlier run of this benchmark (own data dir only)."""
    import django_rq

    from chat.streams import sync_client

    django_rq.get_queue("chat").empty()
    conn = sync_client()
    for pattern in ("chat:answer:*", "chat:stop:*", "chat:lease:*"):
        for key in conn.scan_iter(match=pattern, count=500):
            conn.delete(key)


# --- memory -----------------------------------------------------------------------------------------------------


class MemorySampler(threading.Thread):
    """Peak of the summed RSS of the stack's process trees (children included), per component and in total."""

    def __init__(self, roots: dict[str, list[int]]) -> None:
        super().__init__(name="memory-sampler", daemon=True)
        import psutil

        self.roots = {name: [psutil.Process(pid) for pid in pids if pid] for name, pids in roots.items()}
        self.halt = threading.Event()
        self.peak_total = 0
        self.peak_parts: dict[str, int] = {}
        self.processes_at_peak = 0
        self.cpu_first: dict[int, float] = {}  # pid → user+system CPU seconds when first seen / last seen
        self.cpu_last: dict[int, float] = {}
        self.part_of: dict[int, str] = {}
        self.samples = 0
        self.peak_pss = 0  # proportional set size (shared pages split between processes), every 4th sample

    def sample(self) -> tuple[int, dict[str, int], int]:
        import psutil

        parts, count, pss = {}, 0, 0
        with_pss = self.samples % 4 == 0
        self.samples += 1
        for name, roots in self.roots.items():
            total = 0
            for root in roots:
                try:
                    tree = [root, *root.children(recursive=True)]
                except psutil.Error:
                    continue
                for process in tree:
                    try:
                        total += process.memory_info().rss
                        pss += process.memory_full_info().pss if with_pss else 0
                        times = process.cpu_times()
                        count += 1
                    except psutil.Error:
                        continue
                    self.part_of[process.pid] = name
                    self.cpu_first.setdefault(process.pid, times.user + times.system)
                    self.cpu_last[process.pid] = times.user + times.system
            parts[name] = total
        self.peak_pss = max(self.peak_pss, pss)
        return sum(parts.values()), parts, count

    def run(self) -> None:
        while True:
            total, parts, count = self.sample()
            if total > self.peak_total:
                self.peak_total, self.peak_parts, self.processes_at_peak = total, parts, count
            if self.halt.wait(MEMORY_SAMPLE_SECONDS):
                return

    def finish(self) -> None:
        self.halt.set()
        self.join(10)
        self.sample()

    @property
    def cpu_seconds(self) -> float:
        """CPU the stack used while sampled (short-lived postgres backends between two samples are missed)."""
        return sum(self.cpu_last[pid] - self.cpu_first[pid] for pid in self.cpu_last)

    @property
    def cpu_seconds_by_part(self) -> dict[str, float]:
        parts: dict[str, float] = defaultdict(float)
        for pid, last in self.cpu_last.items():
            parts[self.part_of[pid]] += last - self.cpu_first[pid]
        return dict(parts)


def memory_roots(stack: Stack) -> dict[str, list[int]]:
    from protostar.services.launcher import Launcher

    services = {service.name: service.pid() for service in Launcher(stack.data_dir).services}
    return {
        "daphne": [stack.daphne.pid],
        "worker": [w.pid for w in stack.workers],
        "postgres": [services.get("postgres")],
        "redis": [services.get("redis")],
        "s3": [services.get("s3")],
    }


# --- baseline ---------------------------------------------------------------------------------------------------


def redis_baseline(count: int = 300, rate: float = 100.0) -> list[float]:
    """XADD→XREAD BLOCK latency (ms) on the app's Redis: one paced writer thread, one blocked reader."""
    import redis
    from django.conf import settings

    key = f"bench:baseline:{uuid.uuid4().hex}"
    writer = redis.Redis.from_url(settings.REDIS_URL)
    reader = redis.Redis.from_url(settings.REDIS_URL)
    latencies: list[float] = []

    def read() -> None:
        last = "0-0"
        deadline = time.monotonic() + count / rate + 10
        while len(latencies) < count and time.monotonic() < deadline:
            reply = reader.xread({key: last}, count=500, block=1000)
            now = time.time()
            for entry_id, fields in reply[0][1] if reply else []:
                latencies.append((now - float(fields[b"t"])) * 1000)
                last = entry_id

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    time.sleep(0.05)
    started = time.monotonic()
    for i in range(count):
        delay = started + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        writer.xadd(key, {"t": repr(time.time())})
    thread.join(15)
    writer.delete(key)
    return latencies


# --- the clients ------------------------------------------------------------------------------------------------


@dataclass
class ClientResult:
    tag: str
    sent_at: float = 0.0
    accepted_at: float = 0.0
    message: int = 0
    events: list[tuple[float, dict]] = field(default_factory=list)
    tapped: dict[int, float] = field(default_factory=dict)  # seq → when the entry was readable from Redis
    error: str = ""


async def tap_stream(redis_url: str, message_id: int, into: dict[int, float], deadline: float) -> None:
    import redis.asyncio

    from chat.streams import stream_key

    client = redis.asyncio.Redis.from_url(redis_url, socket_timeout=30)
    last = 0
    try:
        while time.monotonic() < deadline:
            reply = await client.xread({stream_key(message_id): f"0-{last}"}, count=500, block=2000)
            now = time.time()
            for entry_id, fields in reply[0][1] if reply else []:
                seq = int(entry_id.decode().split("-", 1)[1])
                into[seq] = now
                last = seq
                if fields[b"type"] in (b"end", b"error"):
                    return
    finally:
        await client.aclose()


async def run_client(
    url: str,
    port: int,
    cookie: str,
    result: ClientResult,
    go: asyncio.Event,
    ready: list,
    offset: float,
    timeout: float,
    tap_url: str | None,
) -> None:
    from websockets.asyncio.client import connect

    origin = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    tap_task = None
    try:
        async with connect(
            url,
            origin=origin,
            additional_headers={"Cookie": cookie},
            open_timeout=60,
            ping_interval=None,
            max_size=2**22,
        ) as ws:
            ready.append(result.tag)
            await go.wait()
            if offset:
                await asyncio.sleep(offset)
            ask = {
                "type": "ask",
                "conversation": None,
                "content": QUESTION.format(tag=result.tag),
                "client_id": uuid.uuid4().hex,
            }
            result.sent_at = time.time()
            await ws.send(json.dumps(ask))
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    result.error = "timeout"
                    return
                frame = await asyncio.wait_for(ws.recv(), timeout=remaining)
                now = time.time()
                event = json.loads(frame)
                if event["type"] == "accepted":
                    result.accepted_at, result.message = now, event["message"]
                    if tap_url:
                        tap_task = asyncio.create_task(tap_stream(tap_url, result.message, result.tapped, deadline))
                    continue
                result.events.append((now, event))
                if event["type"] in ("end", "error") and event.get("message", result.message) == result.message:
                    if event["type"] == "error" and "seq" not in event:
                        result.error = f"refused: {event.get('code')}"
                    return
    except Exception as exc:
        result.error = result.error or f"{type(exc).__name__}: {exc}"
    finally:
        if tap_task is not None:
            try:
                await asyncio.wait_for(tap_task, timeout=5)
            except (TimeoutError, Exception):
                tap_task.cancel()


async def run_clients(
    port: int, cookies: list[str], tags: list[str], ramp: float, timeout: float, tap_url: str | None
) -> list[ClientResult]:
    url = f"ws://127.0.0.1:{port}/ws/chat/"
    go = asyncio.Event()
    ready: list[str] = []
    results = [ClientResult(tag=tag) for tag in tags]
    n = len(tags)
    offsets = [ramp * i / n for i in range(n)] if ramp and n > 1 else [0.0] * n
    tasks = [
        asyncio.create_task(run_client(url, port, cookies[i], results[i], go, ready, offsets[i], timeout, tap_url))
        for i in range(n)
    ]
    connect_deadline = time.monotonic() + 60
    while len(ready) < n and time.monotonic() < connect_deadline and not all(t.done() for t in tasks):
        await asyncio.sleep(0.01)
    go.set()
    await asyncio.wait(tasks, timeout=timeout + 30)
    return results


# --- one round --------------------------------------------------------------------------------------------------


def percentile(values: list[float], pct: float) -> float:
    from bench.stack import percentile as pick

    return pick(values, pct)


def run_round(stack: Stack, cookies: list[str], n: int, args, *, ramp: float, tap: bool, label: str) -> dict:
    from django.conf import settings

    from protostar.llm.testserver import split_pieces

    expected = split_pieces(reply_text(args.tokens))
    control(stack.llm_url, "/_reset", {})
    control(stack.llm_url, "/_emissions_clear", {})
    control(stack.llm_url, "/_script", {"reply": reply_text(args.tokens), "tokens_per_second": args.tps})
    run_id = uuid.uuid4().hex[:8]
    tags = [f"{run_id}-{i:03d}" for i in range(n)]
    timeout = ramp + args.tokens / args.tps + 90
    import psutil

    sampler = MemorySampler(memory_roots(stack))
    idle_total = sampler.sample()[0]
    harness = [psutil.Process(), psutil.Process(stack.llm.pid)]
    harness_cpu = sum(sum(p.cpu_times()[:2]) for p in harness)
    machine = psutil.cpu_times()
    load_before = os.getloadavg()[0]
    profile_mark(stack, "idle")
    sampler.start()
    started = time.monotonic()
    results = asyncio.run(
        run_clients(stack.port, cookies[:n], tags, ramp, timeout, settings.REDIS_URL if tap else None)
    )
    wall = time.monotonic() - started
    profile_mark(stack, f"{label.replace(' ', '')}-n{n}")
    sampler.finish()
    harness_cpu = sum(sum(p.cpu_times()[:2]) for p in harness) - harness_cpu
    machine_after = psutil.cpu_times()
    busy = (sum(machine_after) - machine_after.idle - machine_after.iowait) - (
        sum(machine) - machine.idle - machine.iowait
    )
    elapsed = wall + 0.5
    emissions: dict[tuple[str, str], float] = {}
    for tag, text, emitted_at in control(stack.llm_url, "/_emissions"):
        emissions[(tag, text)] = emitted_at
    received_at: dict[str, float] = {}
    for request in control(stack.llm_url, "/_requests"):
        users = [m for m in request.get("messages") or [] if m.get("role") == "user"]
        found = TAG.search(str(users[-1].get("content", ""))) if users else None
        if found and request.get("path", "").endswith("/chat/completions"):
            received_at.setdefault(found.group(1), request["received_at"])

    relay, model_to_redis, redis_to_client, ttft_added, ttft_user, accepted = [], [], [], [], [], []
    # Where the added TTFT goes, from the rows: ask sent → row created (daphne) → job claimed (rq + worker) → model
    # request received (retrieval, prompt, connect).
    from chat.models import Message

    rows_by_id = {
        m.pk: m
        for m in Message.objects.filter(pk__in=[r.message for r in results if r.message]).only(
            "created_at", "started_at"
        )
    }
    to_created, to_started, to_model = [], [], []
    for result in results:
        m = rows_by_id.get(result.message)
        if m is None or m.started_at is None or result.tag not in received_at or not result.sent_at:
            continue
        to_created.append((m.created_at.timestamp() - result.sent_at) * 1000)
        to_started.append((m.started_at.timestamp() - m.created_at.timestamp()) * 1000)
        to_model.append((received_at[result.tag] - m.started_at.timestamp()) * 1000)
    lost = disordered = duplicates = mismatched = failed = replayed = not_streamed = 0
    errors: list[str] = []
    anomalies: list[str] = []
    for result in results:
        if result.error:
            failed += 1
            errors.append(f"{result.tag}: {result.error}")
        if result.accepted_at and result.sent_at:
            accepted.append((result.accepted_at - result.sent_at) * 1000)
        if result.tag in received_at and result.sent_at:
            ttft_added.append((received_at[result.tag] - result.sent_at) * 1000)
        seqs = [event.get("seq") for _, event in result.events if "seq" in event]
        duplicates += len(seqs) - len(set(seqs))
        disordered += sum(1 for a, b in itertools.pairwise(seqs) if b != a + 1)
        # Tokens replayed from the stored answer (after a `reset` "expired") were not streamed: left out of relay.
        replay = next((i for i, (_, e) in enumerate(result.events) if e.get("reason") == "expired"), None)
        tokens = [
            (t, event)
            for i, (t, event) in enumerate(result.events)
            if event["type"] == "token" and (replay is None or i < replay)
        ]
        if tokens and result.sent_at:
            ttft_user.append((tokens[0][0] - result.sent_at) * 1000)
        # Pieces, not frames: a token event may carry several model pieces (coalesced); each piece counts as
        # received when its frame arrived.
        position = 0
        answer_mismatches = 0
        texts = []
        for t, event in tokens:
            for text in split_pieces(event["text"]):
                texts.append(text)
                if position < len(expected) and text == expected[position]:
                    position += 1
                else:
                    answer_mismatches += 1
                emitted = emissions.get((result.tag, text))
                if emitted is not None:
                    relay.append((t - emitted) * 1000)
                    visible = result.tapped.get(event["seq"])
                    if visible is not None:
                        model_to_redis.append((visible - emitted) * 1000)
                        redis_to_client.append((t - visible) * 1000)
        # Text-level: what the client shows in the end (the token texts after the last reset) must be the reply.
        kinds = [event["type"] for _, event in result.events]
        after_reset = len(kinds) - kinds[::-1].index("reset") if "reset" in kinds else 0
        shown = "".join(e["text"] for _, e in result.events[after_reset:] if e["type"] == "token")
        complete = shown == "".join(expected) and kinds[-1:] == ["end"]
        streamed = len(set(texts) & set(expected))
        answer_lost = 0 if complete else len(expected) - streamed
        lost += answer_lost
        if complete and streamed < len(expected):
            replayed += 1
            not_streamed += len(expected) - streamed
        elif answer_mismatches:
            mismatched += answer_mismatches
        if answer_lost or streamed < len(expected) or answer_mismatches or result.error:
            odd = [e for _, e in result.events if e["type"] in ("reset", "error")]
            anomalies.append(
                f"{result.tag} message {result.message}: {len(tokens)} tokens, lost {answer_lost}, "
                f"mismatched {answer_mismatches}, events {kinds[:3]}…{kinds[-2:]}, {odd[:2]}"
            )
    peak = sampler.peak_total
    row = {
        "label": label,
        "n": n,
        "ramp_s": ramp,
        "tap": tap,
        "wall_s": round(wall, 2),
        "tokens_expected": n * len(expected),
        "token_frames": sum(1 for r in results for _, e in r.events if e["type"] == "token"),
        "relay_p50_ms": percentile(relay, 50),
        "relay_p99_ms": percentile(relay, 99),
        "relay_max_ms": max(relay) if relay else float("nan"),
        "ttft_added_p50_ms": percentile(ttft_added, 50),
        "ttft_added_p99_ms": percentile(ttft_added, 99),
        "ttft_user_p50_ms": percentile(ttft_user, 50),
        "accepted_p50_ms": percentile(accepted, 50),
        "ttft_split_p50_ms": {
            "ask_to_row": percentile(to_created, 50),
            "row_to_job_start": percentile(to_started, 50),
            "job_start_to_model": percentile(to_model, 50),
        },
        "lost": lost,
        # Complete answers whose tokens came as one stored block (a `reset` "expired" replay) instead of a stream.
        "replayed_answers": replayed,
        "not_streamed": not_streamed,
        "disordered": disordered,
        "duplicates": duplicates,
        "mismatched": mismatched,
        "failed_clients": failed,
        "errors": errors[:5],
        "anomalies": anomalies[:10],
        "memory_idle_mib": idle_total / 2**20,
        "memory_peak_mib": peak / 2**20,
        "memory_peak_parts_mib": {k: round(v / 2**20, 1) for k, v in sampler.peak_parts.items()},
        "processes_at_peak": sampler.processes_at_peak,
        # CPU over the round in cores (2 = the whole machine): our stack, the harness (clients + LLM server), others.
        "cpu_stack_cores": sampler.cpu_seconds / elapsed,
        "cpu_stack_by_part_s": {k: round(v, 2) for k, v in sampler.cpu_seconds_by_part.items()},
        "memory_peak_pss_mib": sampler.peak_pss / 2**20,
        "cpu_harness_cores": harness_cpu / elapsed,
        "cpu_machine_cores": busy / elapsed,
        "cpu_other_cores": max(0.0, (busy - sampler.cpu_seconds - harness_cpu) / elapsed),
        "load_1min": (load_before + os.getloadavg()[0]) / 2,
    }
    if tap:
        row |= {
            "model_to_redis_p50_ms": percentile(model_to_redis, 50),
            "model_to_redis_p99_ms": percentile(model_to_redis, 99),
            "redis_to_client_p50_ms": percentile(redis_to_client, 50),
            "redis_to_client_p99_ms": percentile(redis_to_client, 99),
        }
    return row


def show(row: dict) -> None:
    ms = lambda v: f"{v:8.1f}"  # noqa: E731
    line = (
        f"{row['label']:<16} N={row['n']:<4} relay p50 {ms(row['relay_p50_ms'])} p99 {ms(row['relay_p99_ms'])} "
        f"max {ms(row['relay_max_ms'])} ms | TTFT added p50 {ms(row['ttft_added_p50_ms'])} "
        f"p99 {ms(row['ttft_added_p99_ms'])} ms (accepted p50 {row['accepted_p50_ms']:.0f}) | lost {row['lost']} "
        f"(replayed answers {row['replayed_answers']}, tokens not streamed {row['not_streamed']}) "
        f"disordered {row['disordered']} "
        f"dup {row['duplicates']} mismatch {row['mismatched']} failed {row['failed_clients']} | "
        f"mem peak {row['memory_peak_mib']:.0f} MiB ({row['memory_peak_parts_mib']})\n{'':16} CPU cores: stack "
        f"{row['cpu_stack_cores']:.2f}, harness {row['cpu_harness_cores']:.2f}, other processes "
        f"{row['cpu_other_cores']:.2f}, machine {row['cpu_machine_cores']:.2f} of {os.cpu_count()}; "
        f"load {row['load_1min']:.1f}; wall {row['wall_s']:.1f} s\n{'':16} stack CPU s by part "
        f"{row['cpu_stack_by_part_s']}; memory peak PSS {row['memory_peak_pss_mib']:.0f} MiB\n{'':16} "
        "added TTFT p50 split (ms): " + ", ".join(f"{k} {v:.0f}" for k, v in row["ttft_split_p50_ms"].items())
    )
    print(line, flush=True)
    if row["tap"]:
        print(
            f"{'':16} model→redis p50 {ms(row['model_to_redis_p50_ms'])} p99 {ms(row['model_to_redis_p99_ms'])} ms | "
            f"redis→client p50 {ms(row['redis_to_client_p50_ms'])} p99 {ms(row['redis_to_client_p99_ms'])} ms",
            flush=True,
        )
    for error in row["errors"]:
        print(f"{'':16} client error: {error}", flush=True)
    for anomaly in row["anomalies"][:5]:
        print(f"{'':16} {anomaly}", flush=True)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "llm-server":
        serve_llm(int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[2] == "--port" else 0)
        return
    if len(sys.argv) > 3 and sys.argv[1] == "wrapped" and sys.argv[2] == "--":
        run_wrapped(sys.argv[3:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", default="1,10,100", help="comma-separated client counts")
    parser.add_argument("--tps", type=float, default=30.0, help="tokens per second per answer")
    parser.add_argument("--tokens", type=int, default=200, help="tokens per answer")
    parser.add_argument("--ramp", type=float, default=2.0, help="asks spread uniformly over this many seconds")
    parser.add_argument("--burst", action="store_true", help="also run the largest N with all asks at once")
    parser.add_argument("--tap", action="store_true", help="also run the largest N with Redis taps (diagnosis)")
    parser.add_argument("--workers", type=int, default=1, help="chat worker processes")
    parser.add_argument("--threads", type=int, default=0, help="jobs per worker (default: enough for the largest N)")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="extra env (daphne, workers)")
    parser.add_argument("--worker-env", action="append", default=[], metavar="KEY=VALUE", help="extra worker env")
    parser.add_argument("--patch", action="append", default=[], choices=sorted(PATCHES), help="measure a proposal")
    parser.add_argument("--profile", action="store_true", help="sample daphne's and the workers' CPU by stack")
    parser.add_argument("--json", type=Path, help="write the rows here")
    args = parser.parse_args()
    counts = [int(x) for x in args.n.split(",") if x]
    threads = args.threads or max(32, -(-max(counts) // args.workers))

    os.environ.setdefault("PROTOSTAR_DATA_DIR", str(ROOT / ".data" / "bench-chat"))
    from bench.stack import prepare

    prepare("bench-chat")
    stack = Stack(
        data_dir=Path(os.environ["PROTOSTAR_DATA_DIR"]).resolve(),
        profile=args.profile,
        patches=args.patch,
        env=dict(item.split("=", 1) for item in args.env),
        worker_env=dict(item.split("=", 1) for item in args.worker_env),
    )
    (stack.data_dir / "logs").mkdir(parents=True, exist_ok=True)
    ensure_knowledge_base()
    cookies = session_cookies(max(counts))
    forget_chat_state()
    rows = []
    try:
        start_llm(stack)
        start_workers(stack, args.workers, threads)
        start_daphne(stack)
        print(
            f"stack: daphne :{stack.port}, {args.workers} chat worker(s) × {threads} threads, LLM {stack.llm_url}; "
            f"{args.tokens} tokens/answer at {args.tps:g} tokens/s; env {stack.env or '-'}; worker env "
            f"{stack.worker_env or '-'}; patches {stack.patches or '-'}"
            f"{'; profiled' if args.profile else ''}",
            flush=True,
        )
        base = redis_baseline()
        baseline = {"p50_ms": percentile(base, 50), "p99_ms": percentile(base, 99), "samples": len(base)}
        print(
            f"baseline Redis XADD→XREAD BLOCK: p50 {baseline['p50_ms']:.2f} ms, p99 {baseline['p99_ms']:.2f} ms "
            f"({len(base)} entries)",
            flush=True,
        )
        warm = run_round(stack, cookies, 1, args, ramp=0, tap=False, label="warm-up")
        show(warm)
        for n in counts:
            rows.append(run_round(stack, cookies, n, args, ramp=args.ramp, tap=False, label=f"ramp {args.ramp:g}s"))
            show(rows[-1])
        if args.burst:
            rows.append(run_round(stack, cookies, max(counts), args, ramp=0, tap=False, label="burst"))
            show(rows[-1])
        if args.tap:
            rows.append(run_round(stack, cookies, max(counts), args, ramp=args.ramp, tap=True, label="tapped"))
            show(rows[-1])
    finally:
        stack.stop()
    if args.json:
        config = {"workers": args.workers, "threads": threads, "tps": args.tps, "tokens": args.tokens}
        config |= {"env": stack.env, "worker_env": stack.worker_env, "patches": stack.patches, "profile": args.profile}
        args.json.write_text(json.dumps({"config": config, "baseline": baseline, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
