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


# --- the stack --------------------------------------------------------------------------------------------------


@dataclass
class Stack:
    data_dir: Path
    llm: subprocess.Popen | None = None
    llm_url: str = ""
    daphne: subprocess.Popen | None = None
    port: int = 0
    workers: list[subprocess.Popen] = field(default_factory=list)

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
    }
    args = [sys.executable, "manage.py", "rqworker", "chat", "--worker-class", "chat.worker.ThreadedWorker"]
    for index in range(count):
        log = (stack.data_dir / "logs" / f"bench-chat-worker-{index}.log").open("w")
        stack.workers.append(subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
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
    stack.daphne = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "daphne"),
            "-b",
            "127.0.0.1",
            "-p",
            str(stack.port),
            "protostar.asgi:application",
        ],
        cwd=ROOT,
        env={**os.environ, "LOG_LEVEL": "WARNING"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
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

    def sample(self) -> tuple[int, dict[str, int], int]:
        import psutil

        parts, count = {}, 0
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
                        count += 1
                    except psutil.Error:
                        pass
            parts[name] = total
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
    sampler = MemorySampler(memory_roots(stack))
    idle_total = sampler.sample()[0]
    sampler.start()
    started = time.monotonic()
    results = asyncio.run(
        run_clients(stack.port, cookies[:n], tags, ramp, timeout, settings.REDIS_URL if tap else None)
    )
    wall = time.monotonic() - started
    time.sleep(0.5)
    sampler.finish()
    emissions: dict[tuple[str, str], float] = {}
    for tag, text, emitted_at in control(stack.llm_url, "/_emissions"):
        emissions[(tag, text)] = emitted_at
    received_at: dict[str, float] = {}
    for request in control(stack.llm_url, "/_requests"):
        users = [m for m in request.get("messages") or [] if m.get("role") == "user"]
        found = TAG.search(str(users[-1].get("content", ""))) if users else None
        if found and request.get("path", "").endswith("/chat/completions"):
            received_at.setdefault(found.group(1), request["received_at"])

    relay, model_to_redis, redis_to_client, ttft_added, ttft_user = [], [], [], [], []
    lost = disordered = duplicates = mismatched = failed = 0
    errors: list[str] = []
    for result in results:
        if result.error:
            failed += 1
            errors.append(f"{result.tag}: {result.error}")
        if result.tag in received_at and result.sent_at:
            ttft_added.append((received_at[result.tag] - result.sent_at) * 1000)
        seqs = [event.get("seq") for _, event in result.events if "seq" in event]
        duplicates += len(seqs) - len(set(seqs))
        disordered += sum(1 for a, b in itertools.pairwise(seqs) if b != a + 1)
        tokens = [(t, event) for t, event in result.events if event["type"] == "token"]
        texts = [event["text"] for _, event in tokens]
        if tokens and result.sent_at:
            ttft_user.append((tokens[0][0] - result.sent_at) * 1000)
        position = 0
        for t, event in tokens:
            text = event["text"]
            if position < len(expected) and text == expected[position]:
                position += 1
            else:
                mismatched += 1
            emitted = emissions.get((result.tag, text))
            if emitted is not None:
                relay.append((t - emitted) * 1000)
                visible = result.tapped.get(event["seq"])
                if visible is not None:
                    model_to_redis.append((visible - emitted) * 1000)
                    redis_to_client.append((t - visible) * 1000)
        lost += len(expected) - len(set(texts) & set(expected))
    peak = sampler.peak_total
    row = {
        "label": label,
        "n": n,
        "ramp_s": ramp,
        "tap": tap,
        "wall_s": round(wall, 2),
        "tokens_expected": n * len(expected),
        "tokens_received": sum(1 for r in results for _, e in r.events if e["type"] == "token"),
        "relay_p50_ms": percentile(relay, 50),
        "relay_p99_ms": percentile(relay, 99),
        "relay_max_ms": max(relay) if relay else float("nan"),
        "ttft_added_p50_ms": percentile(ttft_added, 50),
        "ttft_added_p99_ms": percentile(ttft_added, 99),
        "ttft_user_p50_ms": percentile(ttft_user, 50),
        "lost": lost,
        "disordered": disordered,
        "duplicates": duplicates,
        "mismatched": mismatched,
        "failed_clients": failed,
        "errors": errors[:5],
        "memory_idle_mib": idle_total / 2**20,
        "memory_peak_mib": peak / 2**20,
        "memory_peak_parts_mib": {k: round(v / 2**20, 1) for k, v in sampler.peak_parts.items()},
        "processes_at_peak": sampler.processes_at_peak,
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
        f"p99 {ms(row['ttft_added_p99_ms'])} ms | lost {row['lost']} disordered {row['disordered']} "
        f"dup {row['duplicates']} mismatch {row['mismatched']} failed {row['failed_clients']} | "
        f"mem peak {row['memory_peak_mib']:.0f} MiB ({row['memory_peak_parts_mib']})"
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


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "llm-server":
        serve_llm(int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[2] == "--port" else 0)
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
    parser.add_argument("--json", type=Path, help="write the rows here")
    args = parser.parse_args()
    counts = [int(x) for x in args.n.split(",") if x]
    threads = args.threads or max(32, -(-max(counts) // args.workers))

    os.environ.setdefault("PROTOSTAR_DATA_DIR", str(ROOT / ".data" / "bench-chat"))
    from bench.stack import prepare

    prepare("bench-chat")
    stack = Stack(data_dir=Path(os.environ["PROTOSTAR_DATA_DIR"]).resolve())
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
            f"{args.tokens} tokens/answer at {args.tps:g} tokens/s",
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
        args.json.write_text(json.dumps({"config": config, "baseline": baseline, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
