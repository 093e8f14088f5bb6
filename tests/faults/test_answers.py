"""Answers end, and end as the client saw them, whatever dies under them: a chat worker killed with SIGKILL, Redis
or PostgreSQL stopped and started by the launcher mid-answer, a model that cuts its stream."""

from __future__ import annotations

import asyncio
import time

import pytest
from rq import Queue

from tests.faults.stack import FaultStack, Socket, wait_for

pytestmark = pytest.mark.timeout(900)
# About 6 s at 15 tokens/s: long enough to be interrupted mid-stream, Korean and English.
REPLY = " ".join(f"연차{i} leave{i}" for i in range(45)) + " [S1]."
RECOVERY_GOAL_SECONDS = 30


def run(scenario) -> None:
    asyncio.run(scenario)


def assert_agrees(stack: FaultStack, socket: Socket, message_id: int) -> dict:
    """The stored answer is final and is what the client was shown; seqs only grew; nothing is left unfinished."""
    stored = stack.message(message_id)
    assert stored["status"] in {"complete", "failed", "cancelled"}, stored
    assert stored["content"] == socket.shown_text(message_id)
    seqs = socket.seqs(message_id)
    assert seqs == sorted(set(seqs)), seqs
    assert stack.unfinished_answers() == 0
    return stored


def test_an_answer_whose_worker_is_killed_is_run_again_by_another_worker_with_a_reset(fresh, llm, daphne_port):
    llm.script(reply=REPLY, tokens_per_second=15)
    fresh.start_worker("chat")
    fresh.start_worker("chat")  # two live workers: whichever survives finds the answer
    cookie = fresh.session_cookie("killed-worker")

    async def scenario() -> None:
        async with Socket(daphne_port, cookie) as socket:
            message = await socket.ask("연차는 며칠인가요? How many leave days?", "kill-1")
            await socket.until_tokens(message, 3)
            running = fresh.worker_running(f"chat-answer-{message}")
            running.kill()
            killed_at = time.monotonic()
            final = await socket.until_final(message, timeout=RECOVERY_GOAL_SECONDS)
            recovered = time.monotonic() - killed_at
            print(f"worker killed → answer ended in {recovered:.1f} s")
            assert final["type"] == "end" and recovered < RECOVERY_GOAL_SECONDS
            resets = [event for event in socket.of(message) if event["type"] == "reset"]
            assert [event["reason"] for event in resets] == ["retry"]
            assert socket.shown_text(message) == REPLY
            stored = assert_agrees(fresh, socket, message)
            assert stored["status"] == "complete" and stored["attempt_count"] == 2

    run(scenario())


def test_an_answer_whose_runs_keep_dying_ends_failed_keeping_what_was_shown(fresh, llm, daphne_port):
    llm.script(reply=REPLY, tokens_per_second=15)
    # Workers that allow one run per answer: the killed run was it, so the survivor ends the answer.
    fresh.start_worker("chat", CHAT_ANSWER_MAX_ATTEMPTS="1")
    fresh.start_worker("chat", CHAT_ANSWER_MAX_ATTEMPTS="1")
    cookie = fresh.session_cookie("given-up")

    async def scenario() -> None:
        async with Socket(daphne_port, cookie) as socket:
            message = await socket.ask("Remote work rules? 재택근무 규정은?", "give-up-1")
            await socket.until_tokens(message, 2)
            fresh.worker_running(f"chat-answer-{message}").kill()
            final = await socket.until_final(message, timeout=RECOVERY_GOAL_SECONDS)
            assert final["type"] == "error" and final["code"] == "interrupted"
            assert (
                final["detail"]
                == "The answer was interrupted several times and could not be finished. Please ask again."
            )
            stored = assert_agrees(fresh, socket, message)
            assert stored["status"] == "failed" and stored["content"], "the partial answer is kept"
            assert stored["error"] == final["detail"] and "interrupted" in stored["error_detail"]

    run(scenario())


def test_a_model_that_cuts_its_stream_ends_the_answer_with_a_sentence_that_names_no_server(fresh, llm, daphne_port):
    llm.script(reply=REPLY, tokens_per_second=50, cut_after_tokens=5)
    fresh.start_worker("chat")
    cookie = fresh.session_cookie("cut-stream")

    async def scenario() -> None:
        async with Socket(daphne_port, cookie) as socket:
            message = await socket.ask("연차 규정 알려줘", "cut-1")
            final = await socket.until_final(message, timeout=30)
            assert final["type"] == "error" and final["code"] == "stream_interrupted"
            assert "127.0.0.1" not in final["detail"] and "http" not in final["detail"].lower()
            stored = assert_agrees(fresh, socket, message)
            assert stored["status"] == "failed" and stored["content"]
            assert llm.base_url.removesuffix("/v1") in stored["error_detail"], "staff see which server failed"

    run(scenario())


def test_an_answer_streaming_while_redis_restarts_ends_as_the_client_saw_it_and_both_keep_working(
    fresh, llm, daphne_port
):
    llm.script(reply=REPLY, tokens_per_second=15)
    worker = fresh.start_worker("chat")
    cookie = fresh.session_cookie("redis-restart")

    async def scenario() -> None:
        async with Socket(daphne_port, cookie) as socket:
            message = await socket.ask("How many leave days? 연차는?", "redis-1")
            await socket.until_tokens(message, 3)
            await asyncio.to_thread(fresh.restart, "redis")
            back_at = time.monotonic()
            final = await socket.until_final(message, timeout=RECOVERY_GOAL_SECONDS)
            print(f"Redis back → answer ended ({final['type']}) in {time.monotonic() - back_at:.1f} s")
            assert_agrees(fresh, socket, message)
            # Neither daphne nor the worker was restarted: the next question on the same socket is answered.
            llm.script(reply="다음 답변 next answer.", tokens_per_second=50)
            again = await socket.ask("다음 질문 next question", "redis-2")
            assert (await socket.until_final(again, timeout=30))["type"] == "end"
            assert socket.shown_text(again) == "다음 답변 next answer."
            assert_agrees(fresh, socket, again)

    run(scenario())
    assert worker.alive()


def test_queued_jobs_survive_a_redis_restart_in_its_append_only_file(fresh):
    conn = fresh.redis()
    assert conn.config_get("appendonly") == {"appendonly": "yes"}
    queue = Queue("nobody-listens", connection=conn)
    job = queue.enqueue("protostar.jobs.probe", "저장된 job")
    fresh.restart("redis")
    conn = fresh.redis()
    assert Queue("nobody-listens", connection=conn).job_ids == [job.id]
    Queue("nobody-listens", connection=conn).empty()


def test_an_answer_finishing_while_postgres_restarts_is_stored_once_it_is_back(fresh, llm, daphne_port):
    llm.script(reply=REPLY, tokens_per_second=20)
    worker = fresh.start_worker("chat")
    cookie = fresh.session_cookie("postgres-restart")

    async def scenario() -> None:
        async with Socket(daphne_port, cookie) as socket:
            message = await socket.ask("How many leave days? 연차는?", "pg-1")
            await socket.until_tokens(message, 3)
            await asyncio.to_thread(fresh.launcher.down, ["postgres"])
            try:
                # Tokens flow through Redis meanwhile; the end waits for the row, stored once the database is back.
                await socket.until(message, lambda _: socket.shown_text(message) == REPLY, timeout=30)
                assert not [event for event in socket.of(message) if event["type"] in {"end", "error"}]
            finally:
                await asyncio.to_thread(fresh.launcher.up, ["postgres"])
            final = await socket.until_final(message, timeout=RECOVERY_GOAL_SECONDS)
            assert final["type"] == "end"
            stored = assert_agrees(fresh, socket, message)
            assert stored["status"] == "complete" and stored["content"] == REPLY
            again = await socket.ask("다음 질문 next question", "pg-2")
            assert (await socket.until_final(again, timeout=30))["type"] == "end"

    run(scenario())
    assert worker.alive()
    assert wait_for(lambda: fresh.unfinished_answers() == 0, timeout=10, message="no unfinished answer")
