"""Fault recovery: for each fault, the time from the fault to the answers or documents ending, and how many were left
unfinished. Goal: ≤ 30 s each, 0 unfinished.

    .venv/bin/python bench/faults.py [--answers 3] [--json]

Every fault is caused for real on a stack of processes (``tests/faults/stack.py``: daphne, chat and knowledge
workers on a database and Redis database of their own, on the servers under ``.data/bench``), with the default
recovery settings (leases, reconcile intervals): a chat worker killed with SIGKILL while it streams, Redis and
PostgreSQL stopped and started by the launcher mid-answer, a knowledge worker killed and PostgreSQL restarted
mid-document. The baseline is measured in the same run: the same answers with no fault, from the same point (their
third token) to their end, so the ratio says how much longer than an undisturbed answer a recovery takes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.stack import prepare

GOAL_SECONDS = 30.0
REPLY = " ".join(f"연차{i} leave{i}" for i in range(45)) + " [S1]."


def ask_all(stack, port: int, cookie: str, count: int, fault) -> tuple[float, int]:
    """Ask ``count`` questions on one socket; once each has 3 tokens, cause ``fault`` (it returns when the fault is
    over); returns the seconds from then to the last answer's end, and how many never ended."""
    from tests.faults.stack import Socket

    async def scenario() -> tuple[float, int]:
        async with Socket(port, cookie) as socket:
            ids = [
                await socket.ask(f"질문 {i}: how many leave days?", f"bench-{time.time()}-{i}") for i in range(count)
            ]
            for message_id in ids:
                await socket.until_tokens(message_id, 3)
            await asyncio.to_thread(fault, ids)
            faulted_at = time.monotonic()
            for message_id in ids:
                with contextlib.suppress(AssertionError, TimeoutError):
                    await socket.until_final(message_id, timeout=max(1.0, faulted_at + 120 - time.monotonic()))
            elapsed = time.monotonic() - faulted_at
            if stack.unfinished_answers():
                print(f"unfinished: {diagnose(stack)}", file=sys.stderr)
        return elapsed, stack.unfinished_answers()

    return asyncio.run(scenario())


def diagnose(stack) -> dict:
    """What Redis holds for the chat queue (printed when an answer did not end)."""
    from rq import Queue, Worker

    conn = stack.redis()
    return {
        "queued": Queue("chat", connection=conn).job_ids,
        "workers": [(worker.pid, worker.get_state()) for worker in Worker.all(connection=conn)],
        "unfinished": stack.sql(
            "SELECT id, status, attempt_count FROM chat_message WHERE status IN ('pending', 'streaming')"
        ),
    }


def chat_faults(stack, llm, port: int, count: int) -> list[dict]:
    llm.script(reply=REPLY, tokens_per_second=15)
    rows = []
    workers = [stack.start_worker("chat"), stack.start_worker("chat")]
    cookie = stack.session_cookie(f"bench-{time.time_ns()}")
    baseline, _ = ask_all(stack, port, cookie, count, lambda ids: None)
    rows.append(row("no fault (baseline)", baseline, baseline, stack.unfinished_answers()))

    def kill(ids: list[int]) -> None:
        running = stack.worker_running(f"chat-answer-{ids[0]}")
        running.kill()
        workers.remove(running)

    elapsed, unfinished = ask_all(stack, port, cookie, count, kill)
    rows.append(row("chat worker SIGKILL mid-answer", elapsed, baseline, unfinished))
    workers.append(stack.start_worker("chat"))
    elapsed, unfinished = ask_all(stack, port, cookie, count, lambda ids: stack.restart("redis"))
    rows.append(row("Redis stop + start mid-answer", elapsed, baseline, unfinished))
    elapsed, unfinished = ask_all(stack, port, cookie, count, lambda ids: stack.restart("postgres"))
    rows.append(row("PostgreSQL stop + start mid-answer", elapsed, baseline, unfinished))
    for worker in workers:
        worker.stop()
    return rows


def document_faults(stack) -> list[dict]:
    from tests.faults.stack import wait_for
    from tests.faults.test_documents import long_document

    rows = []
    folder = Path(tempfile.mkdtemp())

    def until_processing(document_id: int) -> None:
        def half_done() -> bool:
            document = stack.document(document_id)
            return document["status"] == "processing" and document["progress_done"] > 0

        wait_for(half_done, timeout=120, message="the document half processed", interval=0.1)

    def until_ended(document_id: int, since: float) -> float:
        with contextlib.suppress(AssertionError):
            wait_for(
                lambda: stack.document(document_id)["status"] in {"ready", "failed"},
                timeout=180,
                message="the document to end",
                interval=0.1,
            )
        return time.monotonic() - since

    worker = stack.start_worker("knowledge")
    document_id = stack.ingest(long_document(folder, "baseline.md"))
    until_processing(document_id)
    baseline = until_ended(document_id, time.monotonic())
    rows.append(row("no fault (baseline, rest of the document)", baseline, baseline, stack.unfinished_documents()))

    document_id = stack.ingest(long_document(folder, "killed.md"))
    until_processing(document_id)
    worker.kill()
    killed_at = time.monotonic()
    worker = stack.start_worker("knowledge")  # a supervisor starting it again (its start-up is counted)
    elapsed = until_ended(document_id, killed_at)
    rows.append(row("knowledge worker SIGKILL mid-document", elapsed, baseline, stack.unfinished_documents()))

    document_id = stack.ingest(long_document(folder, "postgres.md"))
    until_processing(document_id)
    stack.restart("postgres")
    elapsed = until_ended(document_id, time.monotonic())
    rows.append(row("PostgreSQL stop + start mid-document", elapsed, baseline, stack.unfinished_documents()))
    worker.stop()
    return rows


def row(fault: str, seconds: float, baseline: float, unfinished: int) -> dict:
    # Each figure as soon as it is measured (the whole run takes minutes): stderr, so --json stays one line.
    print(f"{fault}: {seconds:.1f} s (baseline {baseline:.1f} s), {unfinished} unfinished", file=sys.stderr)
    return {
        "fault": fault,
        "seconds_to_end": round(seconds, 1),
        "baseline_seconds": round(baseline, 1),
        "ratio": round(seconds / baseline, 2) if baseline else None,
        "unfinished": unfinished,
        "goal_met": seconds <= GOAL_SECONDS and unfinished == 0,
    }


def report(args: argparse.Namespace, rows: list[dict]) -> dict:
    """The common shape ``bench/report.py`` renders: a row per fault and its goals."""
    table = [
        {"fault": item["fault"], "seconds to end": item["seconds_to_end"], "baseline s": item["baseline_seconds"]}
        | {"added s": round(item["seconds_to_end"] - item["baseline_seconds"], 1), "unfinished": item["unfinished"]}
        for item in rows
    ]
    checks = [
        {"figure": f"{item['fault']}: seconds to end", "value": item["seconds_to_end"], "goal": f"<= {GOAL_SECONDS:g}"}
        for item in rows
        if not item["fault"].startswith("no fault")
    ]
    checks.append({"figure": "left unfinished", "value": sum(item["unfinished"] for item in rows), "goal": "== 0"})
    return {"config": {"answers": args.answers}, "rows": table, "checks": checks}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--answers", type=int, default=3, help="answers streaming when each chat fault happens")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    prepare()
    import os

    from django.conf import settings

    from tests.faults.stack import FaultStack
    from tests.llmserver import LLMTestServer

    with LLMTestServer(port=0) as llm:
        stack = FaultStack(
            data_dir=Path(os.environ["PROTOSTAR_DATA_DIR"]),
            database_url=settings.DATABASE_URL,
            redis_url=settings.REDIS_URL,
            log_dir=Path(tempfile.mkdtemp(prefix="bench-faults-")),
            settings={
                "LLM_BASE_URL": llm.base_url,
                "CHAT_MODEL_BACKEND": "protostar.llm.openai.OpenAIChatModel",
                "LLM_MAX_RETRIES": "0",
                "EMBEDDING_BATCH_SIZE": "2",
            },
        ).create()
        try:
            port = stack.start_daphne()[1]
            rows = chat_faults(stack, llm, port, args.answers) + document_faults(stack)
        finally:
            stack.destroy()
    if args.json:
        print(json.dumps(report(args, rows), ensure_ascii=False))
        return
    print(f"{'fault':44} {'to end':>8} {'baseline':>9} {'ratio':>6} {'unfinished':>10}  goal (≤ {GOAL_SECONDS:g} s, 0)")
    for item in rows:
        print(
            f"{item['fault']:44} {item['seconds_to_end']:>7.1f}s {item['baseline_seconds']:>8.1f}s "
            f"{item['ratio'] or 0:>6.2f} {item['unfinished']:>10}  {'met' if item['goal_met'] else 'MISSED'}"
        )


if __name__ == "__main__":
    main()
