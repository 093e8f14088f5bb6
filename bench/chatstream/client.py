"""The WebSocket clients (one per simulated browser) and matching their tokens against the model's."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from dataclasses import dataclass, field

from bench.chatstream.common import QUESTION


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


@dataclass
class Tally:
    """Per-token latencies (ms) and token accounting over a round's clients."""

    relay: list[float]
    # (emitted at, relay ms) per piece: splits the relay into answers still starting vs all streaming.
    relay_at: list[tuple[float, float]]
    model_to_redis: list[float]
    redis_to_client: list[float]
    ttft_added: list[float]
    ttft_user: list[float]
    accepted: list[float]
    lost: int
    disordered: int
    duplicates: int
    mismatched: int
    failed: int
    replayed: int
    not_streamed: int
    errors: list[str]
    anomalies: list[str]


def match_tokens(
    results: list[ClientResult],
    expected: list[str],
    emissions: dict[tuple[str, str], float],
    received_at: dict[str, float],
) -> Tally:
    """Match each client's token events against the model's emissions (by question tag and token text)."""
    from tests.llmserver import split_pieces

    relay, model_to_redis, redis_to_client, ttft_added, ttft_user, accepted = [], [], [], [], [], []
    relay_at: list[tuple[float, float]] = []
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
        # Seqs may skip (pieces read together arrive joined, with the last seq) but never go back; a piece that
        # never arrived shows up as lost text below.
        disordered += sum(1 for a, b in itertools.pairwise(seqs) if b <= a)
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
                    relay_at.append((emitted, relay[-1]))
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
    return Tally(
        relay=relay,
        relay_at=relay_at,
        model_to_redis=model_to_redis,
        redis_to_client=redis_to_client,
        ttft_added=ttft_added,
        ttft_user=ttft_user,
        accepted=accepted,
        lost=lost,
        disordered=disordered,
        duplicates=duplicates,
        mismatched=mismatched,
        failed=failed,
        replayed=replayed,
        not_streamed=not_streamed,
        errors=errors,
        anomalies=anomalies,
    )
