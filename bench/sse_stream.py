"""Token relay over the HTTP API's server-sent events against the chat socket: same stack, same load, same run.

    .venv/bin/python bench/sse_stream.py [--n 1,10] [--tps 30] [--tokens 100] [--ramp 1] [--rounds 2] [--json F]

One daphne, one chat worker and the scripted LLM server (``bench.chatstream``'s stack). Each round runs N clients on
the socket, then N clients that ask with ``POST /api/v1/ask`` and follow ``GET /api/v1/messages/{id}/events``; the
relay latency of a piece is when a client received it minus when the model server emitted it. Prints both
transports' p50/p99 and the SSE/socket ratios (goal: ≤ 1.2).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", default="1,10", help="comma-separated client counts")
    parser.add_argument("--tps", type=float, default=30.0, help="tokens per second per answer")
    parser.add_argument("--tokens", type=int, default=100, help="tokens per answer")
    parser.add_argument("--ramp", type=float, default=1.0, help="asks spread uniformly over this many seconds")
    parser.add_argument("--rounds", type=int, default=2, help="socket/SSE round pairs per N (alternating)")
    parser.add_argument("--json", type=Path, help="write the rows here")
    return parser.parse_args()


async def sse_client(client, result, go: asyncio.Event, offset: float) -> None:
    from bench.chatstream.common import QUESTION

    async with client:
        await go.wait()
        if offset:
            await asyncio.sleep(offset)
        try:
            result.sent_at = time.time()
            accepted = await client.post(
                "/api/v1/ask", json={"content": QUESTION.format(tag=result.tag), "client_id": uuid.uuid4().hex}
            )
            accepted.raise_for_status()
            result.accepted_at, result.message = time.time(), accepted.json()["message"]
            async with client.stream("GET", accepted.json()["events_url"]) as response:
                result.tapped[0] = time.time()  # when the event stream was open (its headers arrived)
                async for line in response.aiter_lines():
                    if line.startswith("data: "):
                        event = json.loads(line[6:])
                        result.events.append((time.time(), event))
                        if event["type"] in ("end", "error"):
                            return
        except Exception as exc:
            result.error = f"{type(exc).__name__}: {exc}"


async def sse_clients(port: int, keys: list[str], tags: list[str], ramp: float, timeout: float) -> list:
    import httpx

    from bench.chatstream.client import ClientResult

    go = asyncio.Event()
    results = [ClientResult(tag=tag) for tag in tags]
    n = len(tags)
    offsets = [ramp * i / n for i in range(n)] if ramp and n > 1 else [0.0] * n
    base = f"http://127.0.0.1:{port}"
    # Every client is built before the start: building one (its TLS context) takes tens of milliseconds of the event
    # loop all clients share, which would show up as relay delay in the other clients' streams.
    clients = [
        httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=timeout)
        for key in keys[:n]
    ]
    tasks = [asyncio.create_task(sse_client(clients[i], results[i], go, offsets[i])) for i in range(n)]
    go.set()
    await asyncio.wait(tasks, timeout=timeout + 30)
    return results


def sse_round(stack, keys: list[str], n: int, args) -> dict:
    from bench.chatstream.client import match_tokens
    from bench.chatstream.common import reply_text
    from bench.chatstream.llm_server import control, server_log
    from bench.chatstream.metrics import percentile
    from tests.llmserver import split_pieces

    expected = split_pieces(reply_text(args.tokens))
    control(stack.llm_url, "/_reset", {})
    control(stack.llm_url, "/_emissions_clear", {})
    control(stack.llm_url, "/_script", {"reply": reply_text(args.tokens), "tokens_per_second": args.tps})
    run_id = uuid.uuid4().hex[:8]
    tags = [f"{run_id}-{i:03d}" for i in range(n)]
    timeout = args.ramp + args.tokens / args.tps + 90
    started = time.monotonic()
    results = asyncio.run(sse_clients(stack.port, keys[:n], tags, args.ramp, timeout))
    wall = time.monotonic() - started
    emissions, received_at = server_log(stack.llm_url)
    tally = match_tokens(results, expected, emissions, received_at)
    return {
        "label": "sse",
        "n": n,
        "wall_s": round(wall, 2),
        "relay_p50_ms": percentile(tally.relay, 50),
        "relay_p99_ms": percentile(tally.relay, 99),
        "ttft_added_p50_ms": percentile(tally.ttft_added, 50),
        "accepted_p50_ms": percentile(tally.accepted, 50),
        "lost": tally.lost,
        "failed_clients": tally.failed,
        "errors": tally.errors[:5],
        # From the ask's reply to the open event stream: the second request SSE needs and the socket does not.
        "stream_open_p50_ms": percentile([(r.tapped[0] - r.accepted_at) * 1000 for r in results if 0 in r.tapped], 50),
        "stream_open_max_ms": max(((r.tapped[0] - r.accepted_at) * 1000 for r in results if 0 in r.tapped), default=0),
        # The longest wait between two events of one answer (a stall shows here, beside the model's own pace).
        "max_gap_ms": max(
            (
                max((b[0] - a[0] for a, b in zip(r.events, r.events[1:], strict=False)), default=0) * 1000
                for r in results
            ),
            default=0.0,
        ),
    }


def api_keys(count: int) -> list[str]:
    from django.contrib.auth import get_user_model

    from accounts.services import apikey_create
    from bench.chatstream.common import USERS

    keys = []
    for i in range(count):
        user, _ = get_user_model().objects.get_or_create(username=USERS.format(i=i))
        keys.append(apikey_create(user=user, name="bench sse", scopes=["read", "ask"], expires_in_days=1)[1])
    return keys


def summary(rows: list[dict], n: int) -> dict:
    import statistics

    def median(label: str, field: str) -> float:
        return statistics.median(row[field] for row in rows if row["n"] == n and row["label"] == label)

    socket_p50, socket_p99 = median("socket", "relay_p50_ms"), median("socket", "relay_p99_ms")
    sse_p50, sse_p99 = median("sse", "relay_p50_ms"), median("sse", "relay_p99_ms")
    return {
        "n": n,
        "socket_p50_ms": socket_p50,
        "socket_p99_ms": socket_p99,
        "sse_p50_ms": sse_p50,
        "sse_p99_ms": sse_p99,
        "ratio_p50": sse_p50 / socket_p50,
        "ratio_p99": sse_p99 / socket_p99,
    }


def main() -> None:
    args = parse_args()
    counts = [int(x) for x in args.n.split(",") if x]
    os.environ.setdefault("PROTOSTAR_DATA_DIR", str(ROOT / ".data" / "bench-chat"))
    from bench.stack import prepare

    prepare("bench-chat")
    from bench.chatstream.fixtures import ensure_knowledge_base, forget_chat_state, session_cookies
    from bench.chatstream.processes import Stack, start_daphne, start_llm, start_workers
    from bench.chatstream.rounds import run_round

    stack = Stack(data_dir=Path(os.environ["PROTOSTAR_DATA_DIR"]).resolve())
    (stack.data_dir / "logs").mkdir(parents=True, exist_ok=True)
    ensure_knowledge_base()
    cookies, keys = session_cookies(max(counts)), api_keys(max(counts))
    forget_chat_state()
    rows: list[dict] = []
    try:
        start_llm(stack)
        start_workers(stack, 1, max(32, max(counts)))
        start_daphne(stack)
        print(f"stack: daphne :{stack.port}, 1 chat worker, {args.tokens} tokens/answer at {args.tps:g}/s", flush=True)
        run_round(stack, cookies, 1, args, ramp=0, tap=False, label="warm-up")
        sse_round(stack, keys, 1, args)
        for n in counts:
            for _ in range(args.rounds):
                socket = run_round(stack, cookies, n, args, ramp=args.ramp, tap=False, label="socket")
                rows.append({key: socket[key] for key in ("label", "n", "wall_s", "relay_p50_ms", "relay_p99_ms")})
                rows[-1] |= {"lost": socket["lost"], "failed_clients": socket["failed_clients"]}
                rows.append(sse_round(stack, keys, n, args))
                for row in rows[-2:]:
                    print(
                        f"N={n:<4} {row['label']:<6} relay p50 {row['relay_p50_ms']:7.1f} ms  p99 "
                        f"{row['relay_p99_ms']:7.1f} ms  lost {row['lost']}  failed {row['failed_clients']}"
                        + (f"  longest gap {row['max_gap_ms']:.0f} ms" if "max_gap_ms" in row else "")
                        + (
                            f"  stream open p50 {row['stream_open_p50_ms']:.0f} ms, "
                            f"max {row['stream_open_max_ms']:.0f} ms"
                            if "stream_open_p50_ms" in row
                            else ""
                        ),
                        flush=True,
                    )
    finally:
        stack.stop()
    summaries = [summary(rows, n) for n in counts]
    for s in summaries:
        print(
            f"N={s['n']}: relay p50 socket {s['socket_p50_ms']:.1f} ms, SSE {s['sse_p50_ms']:.1f} ms "
            f"({s['ratio_p50']:.2f}×); p99 socket {s['socket_p99_ms']:.1f} ms, SSE {s['sse_p99_ms']:.1f} ms "
            f"({s['ratio_p99']:.2f}×, goal ≤ 1.2×)"
        )
    if args.json:
        args.json.write_text(json.dumps(report(args, rows, summaries), indent=2))


def report(args: argparse.Namespace, rounds: list[dict], summaries: list[dict]) -> dict:
    """The common shape ``bench/report.py`` renders: a row per N (medians of the rounds) and each ratio's goal."""
    rows = [
        {"N": s["n"], "socket p50 / p99 ms": f"{s['socket_p50_ms']:.1f} / {s['socket_p99_ms']:.1f}"}
        | {"SSE p50 / p99 ms": f"{s['sse_p50_ms']:.1f} / {s['sse_p99_ms']:.1f}"}
        | {"SSE ÷ socket p50": round(s["ratio_p50"], 2), "SSE ÷ socket p99": round(s["ratio_p99"], 2)}
        for s in summaries
    ]
    checks = [
        {"figure": f"SSE ÷ socket relay {q}, N = {s['n']}", "value": round(s[f"ratio_{q}"], 2), "goal": "<= 1.2"}
        for s in summaries
        for q in ("p50", "p99")
    ]
    config = {"tokens": args.tokens, "tps": args.tps, "ramp": args.ramp, "rounds": args.rounds}
    return {"config": config, "rows": rows, "checks": checks, "rounds": rounds}


if __name__ == "__main__":
    main()
