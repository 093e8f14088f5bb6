"""One measured round: N clients ask at once (or ramped), then latency, losses, memory and CPU are tallied."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from typing import TYPE_CHECKING

from bench.chatstream.client import ClientResult, match_tokens, run_clients
from bench.chatstream.common import reply_text
from bench.chatstream.llm_server import control, server_log
from bench.chatstream.metrics import MemorySampler, memory_roots, percentile, resource_fields
from bench.chatstream.profiler import profile_mark

if TYPE_CHECKING:
    from bench.chatstream.processes import Stack


def ttft_split(results: list[ClientResult], received_at: dict[str, float]) -> tuple[list, list, list]:
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
    return to_created, to_started, to_model


def run_round(stack: Stack, cookies: list[str], n: int, args, *, ramp: float, tap: bool, label: str) -> dict:
    from django.conf import settings

    from tests.llmserver import split_pieces

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
    emissions, received_at = server_log(stack.llm_url)
    tally = match_tokens(results, expected, emissions, received_at)
    to_created, to_started, to_model = ttft_split(results, received_at)
    last_start = max(received_at.values(), default=0.0)
    row = {
        "label": label,
        "n": n,
        "ramp_s": ramp,
        "tap": tap,
        "wall_s": round(wall, 2),
        "tokens_expected": n * len(expected),
        "token_frames": sum(1 for r in results for _, e in r.events if e["type"] == "token"),
        "relay_p50_ms": percentile(tally.relay, 50),
        "relay_p99_ms": percentile(tally.relay, 99),
        "relay_max_ms": max(tally.relay) if tally.relay else float("nan"),
        # Before the last answer's model request, answers are still starting (jobs claiming, embedding questions,
        # searching) next to those streaming; after it, every remaining answer only streams.
        "relay_p99_starting_ms": percentile([ms for at, ms in tally.relay_at if at < last_start], 99),
        "relay_p99_streaming_ms": percentile([ms for at, ms in tally.relay_at if at >= last_start], 99),
        "ttft_added_p50_ms": percentile(tally.ttft_added, 50),
        "ttft_added_p99_ms": percentile(tally.ttft_added, 99),
        "ttft_user_p50_ms": percentile(tally.ttft_user, 50),
        "accepted_p50_ms": percentile(tally.accepted, 50),
        "ttft_split_p50_ms": {
            "ask_to_row": percentile(to_created, 50),
            "row_to_job_start": percentile(to_started, 50),
            "job_start_to_model": percentile(to_model, 50),
        },
        "lost": tally.lost,
        # Complete answers whose tokens came as one stored block (a `reset` "expired" replay) instead of a stream.
        "replayed_answers": tally.replayed,
        "not_streamed": tally.not_streamed,
        "disordered": tally.disordered,
        "duplicates": tally.duplicates,
        "mismatched": tally.mismatched,
        "failed_clients": tally.failed,
        "errors": tally.errors[:5],
        "anomalies": tally.anomalies[:10],
    } | resource_fields(sampler, idle_total, harness_cpu, busy, elapsed, load_before)
    if tap:
        row |= {
            "model_to_redis_p50_ms": percentile(tally.model_to_redis, 50),
            "model_to_redis_p99_ms": percentile(tally.model_to_redis, 99),
            "redis_to_client_p50_ms": percentile(tally.redis_to_client, 50),
            "redis_to_client_p99_ms": percentile(tally.redis_to_client, 99),
        }
    return row
