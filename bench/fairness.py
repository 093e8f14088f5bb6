"""Fairness benchmark: one user's flood must not delay another user's answer.

    .venv/bin/python bench/fairness.py [--n 500] [--b-asks 5] [--tokens 20] [--tps 200] [--fifo] [--json out.json]

Against the real stack (daphne, one threaded chat worker, the scripted OpenAI-compatible LLM server, PostgreSQL,
Redis), through real WebSockets:

1. **B alone** on an idle stack asks ``--b-asks`` questions one after another: B's time to first token (TTFT).
2. **A alone** queues ``--n`` questions at once on one socket: A's throughput (answers/s, first ask to last ``end``).
3. **A then B**: A queues ``--n`` questions at once, then B asks ``--b-asks`` questions one after another while A's
   flood is being answered: B's TTFT against (1) (goal ≤ 1.5×) and A's throughput against (2) (goal ≥ 0.9×).

``--fifo`` adds run 3 with the per-user admission limit lifted (``CHAT_USER_ACTIVE_ANSWERS`` = n), i.e. the plain
first-in-first-out queue, to show what the discipline buys. The ask caps (rate, open answers, readers, frames per
second) are turned off for the run: it measures the queue discipline, not the refusals.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CAPS_OFF = {
    "CHAT_ASKS_PER_MINUTE": "0",
    "CHAT_MAX_OPEN_ANSWERS": "0",
    "CHAT_MAX_READERS_PER_SOCKET": "0",
    "CHAT_MAX_READERS_PER_USER": "0",
    "CHAT_SOCKET_FRAMES_PER_SECOND": "0",
    "CHAT_SOCKET_SEND_BUFFER_BYTES": "0",
}
QUESTIONS = ("How many days of paid leave do full-time employees get?", "연간 유급휴가는 며칠인가요?")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=500, help="questions A queues at once")
    parser.add_argument("--b-asks", type=int, default=5, help="questions B asks one after another")
    parser.add_argument("--tokens", type=int, default=20, help="tokens per answer")
    parser.add_argument("--tps", type=float, default=200.0, help="tokens per second per answer")
    parser.add_argument("--threads", type=int, default=100, help="chat worker threads")
    parser.add_argument("--fifo", action="store_true", help="also run A then B without the per-user limit")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds for one flood to be answered")
    parser.add_argument("--json", type=Path, help="write the figures here")
    return parser.parse_args()


async def _connect(port: int, cookie: str):
    from websockets.asyncio.client import connect

    return await connect(
        f"ws://127.0.0.1:{port}/ws/chat/",
        origin=f"http://127.0.0.1:{port}",
        additional_headers={"Cookie": cookie},
        open_timeout=60,
        ping_interval=None,
        max_size=2**24,
    )


async def b_ttfts(port: int, cookie: str, count: int, timeout: float) -> list[float]:
    """B's questions one after another: seconds from sending ``ask`` to the first ``token``."""
    ttfts = []
    async with await _connect(port, cookie) as ws:
        for index in range(count):
            ask = {"type": "ask", "conversation": None, "content": QUESTIONS[index % 2], "client_id": uuid.uuid4().hex}
            sent = time.monotonic()
            await ws.send(json.dumps(ask, ensure_ascii=False))
            first = None
            while True:
                event = json.loads(await asyncio.wait_for(ws.recv(), timeout))
                if event["type"] == "token" and first is None:
                    first = time.monotonic() - sent
                if event["type"] == "error" and "message" not in event:
                    raise RuntimeError(f"B was refused: {event}")
                if event["type"] in ("end", "error") and "message" in event:
                    break
            ttfts.append(first if first is not None else float("nan"))
    return ttfts


class Flood:
    """A's socket: queue ``n`` questions at once, then count the answers as they end."""

    def __init__(self, port: int, cookie: str, n: int) -> None:
        self.port, self.cookie, self.n = port, cookie, n
        self.accepted = asyncio.Event()
        self.started = self.finished = 0.0
        self.failed = 0

    async def run(self, timeout: float) -> None:
        async with await _connect(self.port, self.cookie) as ws:
            self.started = time.monotonic()
            for index in range(self.n):
                content = f"{QUESTIONS[index % 2]} (#{index})"
                await ws.send(
                    json.dumps(
                        {"type": "ask", "conversation": None, "content": content, "client_id": uuid.uuid4().hex},
                        ensure_ascii=False,
                    )
                )
            accepted = ended = 0
            deadline = time.monotonic() + timeout
            while ended < self.n:
                event = json.loads(await asyncio.wait_for(ws.recv(), max(0.1, deadline - time.monotonic())))
                if event["type"] == "accepted":
                    accepted += 1
                    if accepted == self.n:
                        self.accepted.set()
                elif event["type"] == "error" and "message" not in event:
                    raise RuntimeError(f"A was refused: {event}")
                elif event["type"] in ("end", "error"):
                    ended += 1
                    self.failed += event["type"] == "error"
            self.finished = time.monotonic()

    @property
    def throughput(self) -> float:
        return self.n / (self.finished - self.started)


async def flood_then_b(port: int, cookies: dict[str, str], args: argparse.Namespace) -> tuple[float, list[float]]:
    flood = Flood(port, cookies["a"], args.n)
    task = asyncio.create_task(flood.run(args.timeout))
    await asyncio.wait_for(flood.accepted.wait(), args.timeout)
    ttfts = await b_ttfts(port, cookies["b"], args.b_asks, args.timeout)
    await task
    return flood.throughput, ttfts


def run_stack(args: argparse.Namespace, per_user: int, measure) -> object:
    """Start daphne and a chat worker with ``per_user`` as ``CHAT_USER_ACTIVE_ANSWERS``, run ``measure(port)``."""
    from bench.chatstream.fixtures import forget_chat_state
    from bench.chatstream.processes import Stack, start_daphne, start_llm, start_workers
    from protostar.llm.testserver import remote_script

    stack = Stack(data_dir=Path(os.environ["PROTOSTAR_DATA_DIR"]).resolve())
    stack.env = {**CAPS_OFF, "CHAT_USER_ACTIVE_ANSWERS": str(per_user)}
    (stack.data_dir / "logs").mkdir(parents=True, exist_ok=True)
    forget_chat_state()
    forget_counters()
    try:
        start_llm(stack)
        remote_script(stack.llm_url, reply=" ".join(["word"] * args.tokens) + " [S1].", tokens_per_second=args.tps)
        start_workers(stack, 1, args.threads)
        start_daphne(stack)
        return asyncio.run(measure(stack.port))
    finally:
        stack.stop()


def forget_counters() -> None:
    from chat.streams import sync_client

    conn = sync_client()
    for pattern in ("chat:rate:*", "chat:fair:*", "chat:sockets:*"):
        for key in conn.scan_iter(match=pattern, count=1000):
            conn.delete(key)


def session_cookies() -> dict[str, str]:
    from django.contrib.auth import get_user_model
    from django.test import Client

    cookies = {}
    for name in ("a", "b"):
        user, _ = get_user_model().objects.get_or_create(username=f"bench-fair-{name}")
        client = Client()
        client.force_login(user)
        cookies[name] = f"sessionid={client.cookies['sessionid'].value}"
    return cookies


def main() -> None:
    args = parse_args()
    os.environ.setdefault("PROTOSTAR_DATA_DIR", str(ROOT / ".data" / "bench-fair"))
    from bench.stack import prepare

    prepare("bench-fair")
    from django.conf import settings

    from bench.chatstream.fixtures import ensure_knowledge_base

    ensure_knowledge_base()
    cookies = session_cookies()
    per_user = settings.CHAT_USER_ACTIVE_ANSWERS
    print(
        f"A queues {args.n} questions at once; B asks {args.b_asks}; {args.tokens} tokens/answer at {args.tps:g}/s; "
        f"1 chat worker × {args.threads} threads; CHAT_USER_ACTIVE_ANSWERS={per_user}",
        flush=True,
    )

    async def alone(port: int):
        warm = await b_ttfts(port, cookies["b"], 2, args.timeout)  # loads the embedder, the prompts, the pool
        b_alone = await b_ttfts(port, cookies["b"], args.b_asks, args.timeout)
        flood = Flood(port, cookies["a"], args.n)
        await flood.run(args.timeout)
        del warm
        return b_alone, flood.throughput

    b_alone, a_alone = run_stack(args, per_user, alone)
    a_mixed, b_mixed = run_stack(args, per_user, lambda port: _warm_then(port, cookies, args))
    rows = {
        "b_ttft_alone_s": statistics.median(b_alone),
        "a_throughput_alone": a_alone,
        "b_ttft_with_flood_s": statistics.median(b_mixed),
        "b_ttft_with_flood_max_s": max(b_mixed),
        "a_throughput_with_b": a_mixed,
    }
    rows["b_ttft_ratio"] = rows["b_ttft_with_flood_s"] / rows["b_ttft_alone_s"]
    rows["a_throughput_ratio"] = a_mixed / a_alone
    print(f"B alone:            TTFT p50 {rows['b_ttft_alone_s'] * 1000:.0f} ms  ({_ms(b_alone)})")
    print(f"A alone:            {a_alone:.1f} answers/s")
    print(
        f"A's flood, then B:  B TTFT p50 {rows['b_ttft_with_flood_s'] * 1000:.0f} ms ({_ms(b_mixed)}); "
        f"A {a_mixed:.1f} answers/s"
    )
    print(
        f"B TTFT ratio {rows['b_ttft_ratio']:.2f}× (goal ≤ 1.5×); A throughput ratio "
        f"{rows['a_throughput_ratio']:.2f}× (goal ≥ 0.9×)"
    )
    if args.fifo:
        fifo_a, fifo_b = run_stack(args, max(args.n, 1), lambda port: _warm_then(port, cookies, args))
        rows |= {"fifo_b_ttft_s": statistics.median(fifo_b), "fifo_a_throughput": fifo_a}
        print(
            f"FIFO (no per-user limit): B TTFT p50 {rows['fifo_b_ttft_s'] * 1000:.0f} ms "
            f"({rows['fifo_b_ttft_s'] / rows['b_ttft_alone_s']:.1f}× alone); A {fifo_a:.1f} answers/s"
        )
    if args.json:
        config = {
            "n": args.n,
            "b_asks": args.b_asks,
            "tokens": args.tokens,
            "tps": args.tps,
            "threads": args.threads,
            "per_user": per_user,
        }
        args.json.write_text(json.dumps({"config": config, "figures": rows}, indent=2))


async def _warm_then(port: int, cookies: dict[str, str], args: argparse.Namespace):
    await b_ttfts(port, cookies["b"], 2, args.timeout)
    return await flood_then_b(port, cookies, args)


def _ms(values: list[float]) -> str:
    return ", ".join(f"{value * 1000:.0f}" for value in values) + " ms"


if __name__ == "__main__":
    main()
