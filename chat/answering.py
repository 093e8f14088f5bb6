"""Write one answer: claim the message, retrieve, build the prompt, stream the model into the answer's Redis stream.

Safe to run twice: a run first takes the answer's lease (Redis ``SET NX``); a second run while the first is alive
backs off, and a run after the first died takes over, tells readers to ``reset``, and starts the answer again. Every
stream write and the final save are fenced by the run's attempt id, so a stale run can never interleave.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import time
import uuid
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections, connections
from django.utils import timezone

from chat import events, selectors, services, streams
from chat.admission import Refused, check_quota
from chat.context import build_context
from chat.models import Message
from chat.rewriting import Turn, get_query_rewriter
from chat.services import AnswerOutcome, message_context_record
from chat.watch import Watch, answer_watcher
from knowledge.search import load_statistics, search_chunks
from prompts.render import preload_templates
from protostar import metrics
from protostar.llm.base import LLMError, SinkChatModel, get_chat_model, get_embedder
from protostar.tokens import count_tokens

logger = logging.getLogger(__name__)
# What a restarting PostgreSQL raises; the run waits for it (the answer is kept) or is run again later.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)
# Pauses between attempts to store a finished answer while the database is away (bounded by
# CHAT_DATABASE_WAIT_SECONDS); they only pace the retries.
STORE_RETRY_PAUSES = (0.25, 0.5, 1.0, 2.0)


def answer_message(*, message_id: int) -> str | None:
    """Run the answer job for an assistant message; returns its final status, or ``None`` if nothing was done."""
    message = selectors.message_get(message_id=message_id)
    if message is None or message.role != Message.Role.ASSISTANT or message.is_terminal:
        return None
    owner = streams.AnswerStream(message_id=message_id, attempt_id=uuid.uuid4().hex, conn=streams.sync_client())
    if not owner.acquire():
        logger.info("message %s is being answered by a live run; this run backs off", message_id)
        return None
    # Watched from the lease on: retrieval under load can outlast a lease that only streaming renewed.
    watch = answer_watcher().watch(owner)
    metrics.ANSWERS_IN_FLIGHT.inc()
    try:
        message = services.message_claim(message_id=message_id, attempt_id=owner.attempt_id)
        if message is None:
            return None
        if message.attempt_count > settings.CHAT_ANSWER_MAX_ATTEMPTS:
            return _give_up(message, owner, watch)
        return _answer_claimed(message, owner, watch)
    except streams.LeaseLost as exc:
        # Superseded, or Redis went away: the answer stays unfinished and the reconcile runs it again.
        logger.warning("message %s: attempt %s stopped: %s", message_id, owner.attempt_id, exc)
        return None
    finally:
        metrics.ANSWERS_IN_FLIGHT.dec()
        answer_watcher().forget(watch)
        with contextlib.suppress(*streams.REDIS_UNAVAILABLE):  # the lease then lapses on its own
            owner.release()
            owner.conn.delete(streams.stop_key(message_id))


def _give_up(message: Message, owner: streams.AnswerStream, watch: Watch) -> str | None:
    """The answer's runs kept dying: end it as failed, keeping the text its readers were shown."""
    shown = streams.text_since_reset(streams.read_all_sync(owner.conn, message.pk))
    runs = message.attempt_count - 1
    logger.error("message %s: %d runs were interrupted; the answer is given up", message.pk, runs)
    outcome = _fault(
        AnswerOutcome(status=Message.Status.FAILED, content=shown),
        "interrupted",
        f"{runs} runs of the answer were interrupted (worker lost, or Redis or the database unavailable).",
    )
    return _finish(message, owner, outcome, watch)


def _answer_claimed(message: Message, owner: streams.AnswerStream, watch: Watch) -> str | None:
    if message.attempt_count > 1 or owner.conn.exists(streams.stream_key(message.pk)):
        # A dead run already streamed part of this answer (its stream may even be gone with a lost Redis): readers
        # must drop what they showed before the new one arrives.
        owner.append(events.RESET, events.reset_data(reason="retry"))
    try:
        asker = message.conversation.owner
        refusal = _over_quota(asker)
        if refusal is not None:
            return _finish(message, owner, refusal, watch)
        query = retrieval_query(message)
        # Retrieval first waits its turn for the embedder: when many answers start at once, a connection held
        # meanwhile would keep one database backend per waiting answer (~100 at N = 100).
        connections.close_all()
        hits = retrieve(query=query, user=asker)
        sources = sources_from_hits(hits)
        owner.append(events.SOURCES, events.sources_data(sources))
        request = build_messages(message, hits, focus=query)
        model = _chat_model()
    except (streams.LeaseLost, *DATABASE_UNAVAILABLE):
        # The database away is not the answer's fault: the run ends unfinished and is run again.
        raise
    except Exception as exc:
        logger.exception("message %s: preparing the answer failed", message.pk)
        outcome = _fault(AnswerOutcome(status=Message.Status.FAILED), "internal", _readable(exc))
        return _finish(message, owner, outcome, watch)
    # Streaming takes seconds to minutes: give the database connection back instead of holding one per answer.
    connections.close_all()
    outcome = generate(owner, watch, model, request)
    outcome.sources = sources
    outcome.retrieval_query = query
    outcome.model_name = getattr(model, "model_name", "")
    outcome.prompt_version = prompt_version_label("answer_system")
    _count_missing_usage(outcome, request)
    close_old_connections()
    return _finish(message, owner, outcome, watch)


def _over_quota(user: Any) -> AnswerOutcome | None:
    """A queued answer whose user used up a quota meanwhile fails before any model call (the rewriter's included)."""
    try:
        check_quota(user=user)
    except Refused as refused:
        # The refusal's sentence is what the user reads: it says when the quota resets.
        return AnswerOutcome(status=Message.Status.FAILED, error_code=refused.code, error=refused.detail)
    return None


def _finish(message: Message, owner: streams.AnswerStream, outcome: AnswerOutcome, watch: Watch) -> str | None:
    # The row first, then the final event: a client that reloads after ``end`` must find the stored answer.
    if not _store(message.pk, owner, outcome, watch):
        return None
    if outcome.status == Message.Status.FAILED:
        owner.append(events.ERROR, events.error_data(code=outcome.error_code, detail=outcome.error))
    else:
        finish_reason = "stop" if outcome.status == Message.Status.COMPLETE else "cancelled"
        owner.append(
            events.END,
            events.end_data(
                finish_reason=finish_reason,
                prompt_tokens=outcome.prompt_tokens,
                completion_tokens=outcome.completion_tokens,
            ),
        )
    if outcome.status == Message.Status.COMPLETE:
        services.memory_update_request(conversation_id=message.conversation_id)
    _observe(message, outcome)
    return outcome.status


def _observe(message: Message, outcome: AnswerOutcome) -> None:
    metrics.ANSWERS.labels(outcome.status).inc()
    metrics.ANSWER_DURATION.observe((timezone.now() - message.created_at).total_seconds())
    if outcome.first_token_at is not None:
        metrics.ANSWER_TTFT.observe(max(0.0, (outcome.first_token_at - message.created_at).total_seconds()))
    metrics.TOKENS_STREAMED.inc(outcome.completion_tokens or 0)


def _store(message_id: int, owner: streams.AnswerStream, outcome: AnswerOutcome, watch: Watch) -> bool:
    """``message_finish``, waiting out a database restart (the watcher keeps the lease meanwhile): an answer the
    user has watched to its end is kept rather than generated again."""
    deadline = time.monotonic() + settings.CHAT_DATABASE_WAIT_SECONDS
    for attempt in itertools.count():
        try:
            return services.message_finish(message_id=message_id, attempt_id=owner.attempt_id, outcome=outcome)
        except DATABASE_UNAVAILABLE:
            if time.monotonic() >= deadline or watch.lease_lost.is_set():
                raise
            logger.warning("message %s: the database is unavailable; storing the answer again", message_id)
            connections.close_all()
            time.sleep(STORE_RETRY_PAUSES[min(attempt, len(STORE_RETRY_PAUSES) - 1)])
    raise AssertionError("unreachable")


def retrieval_query(message: Message) -> str:
    """The question as typed, or its standalone rewrite when earlier turns give it meaning (``chat.rewriting``)."""
    question = message.reply_to.content
    history = selectors.recent_turns(message=message, limit=settings.CHAT_REWRITE_HISTORY_MESSAGES)
    if not history:
        return question
    turns = [Turn(role=turn.role, content=turn.content) for turn in history]
    return get_query_rewriter().rewrite(question=question, history=turns)


def prompt_version_label(name: str) -> str:
    """Which version of a prompt is active, as stored with an answer (feedback is judged against it)."""
    from prompts.selectors import prompt_active_version_id

    version_id = prompt_active_version_id(name=name)
    return f"{name}@{'shipped' if version_id is None else f'v{version_id}'}"


def retrieve(*, query: str, user: Any) -> list[Any]:
    """The passages for ``query`` among the documents ``user`` may read (the embedder runs before any SQL)."""
    return search_chunks(query=query, user=user, k=settings.CHAT_TOP_K)


def sources_from_hits(hits: Sequence[Any]) -> list[dict[str, Any]]:
    return [
        {
            "label": f"S{index}",
            "chunk_id": hit.chunk_id,
            "document_id": hit.document_id,
            "title": hit.title,
            "page": hit.page_start,
            "snippet": hit.snippet,
            "score": round(float(hit.score), 6),
        }
        for index, hit in enumerate(hits, start=1)
    ]


def build_messages(message: Message, hits: Sequence[Any], focus: str = "") -> Any:
    """The model request for ``message``: system prompt with the labelled passages and the conversation's memory,
    the recent turns and the question, within the context token budgets (``chat.context``).

    Also records what this prompt costs and what sending the full history would have cost instead.
    """
    built = build_context(message=message, hits=hits, focus=focus)
    message_context_record(
        message_id=message.pk,
        attempt_id=message.attempt_id,
        context_tokens=built.context_tokens,
        full_history_tokens=built.full_history_tokens,
        memory_version=built.memory_version,
    )
    return built.request


def warm_up() -> None:
    """Load what the first answer would otherwise wait for: a stop must not wait for a tokenizer to load, nor the
    first answer for the model client, the prompts and the search statistics (on top of the embedder).
    Each part that fails is logged and left to the first job, which reports it properly."""
    count_tokens("warm up")
    model = _chat_model()  # a misconfigured model fails the start-up, loudly
    parts = {
        "the model client": getattr(model, "prepare", lambda: None),
        "the embedder": lambda: get_embedder().embed_query("warm up"),
        "the prompts": preload_templates,
        "the search statistics": load_statistics,
    }
    for what, load in parts.items():
        try:
            load()
        except Exception:
            logger.warning("%s could not be loaded ahead of the first job", what, exc_info=True)
    # The statistics and prompts were read on this thread's connection; jobs run on other threads.
    connections.close_all()


def _chat_model() -> Any:
    return get_chat_model()


def generate(owner: streams.AnswerStream, watch: Watch, model: Any, request: Any) -> AnswerOutcome:
    """Stream the model into the answer stream until it ends, fails, is stopped, or this run loses the answer.

    A ``SinkChatModel`` (the OpenAI-compatible one) writes the pieces itself from its event loop while this thread
    only waits; any other model is iterated here. Either way ``sink.parts`` is exactly what reached the stream.
    """
    sink = streams.AsyncAppender(owner)
    outcome = AnswerOutcome(status=Message.Status.COMPLETE)
    try:
        if isinstance(model, SinkChatModel):
            tokens = model.stream_to(request, sink)
            watch.attach(tokens)
            tokens.wait_done()
        else:
            tokens = model.stream(request)
            watch.attach(tokens)
            _copy_pieces(tokens, sink, watch)
        outcome.prompt_tokens = tokens.usage.prompt_tokens or 0
        outcome.completion_tokens = tokens.usage.completion_tokens or 0
    except streams.LeaseLost:
        raise
    except LLMError as exc:
        outcome = _fault(outcome, exc.code, exc.detail)
    except Exception as exc:
        logger.exception("message %s: the model stream failed", owner.message_id)
        outcome = _fault(outcome, "llm_error", _readable(exc))
    if watch.lease_lost.is_set():
        raise streams.LeaseLost(f"message {owner.message_id}: lease lost while streaming")
    if watch.stopped.is_set():
        # Closing the stream may surface as an error from the vendor client: a requested stop is still a stop.
        outcome.status, outcome.error_code, outcome.error = Message.Status.CANCELLED, "", ""
        outcome.error_detail = ""
    outcome.content = "".join(sink.parts)
    outcome.first_token_at = sink.first_written_at
    return outcome


def answers_streaming() -> bool:
    """Whether this process is generating any answer now (the chat worker then embeds new questions at a lower
    priority, so those answers keep flowing)."""
    return answer_watcher().generating()


def _copy_pieces(tokens: Any, sink: streams.AsyncAppender, watch: Watch) -> None:
    for piece in tokens:
        if watch.interrupted:
            break
        if piece:
            sink.write_now(piece)


def _fault(outcome: AnswerOutcome, code: str, detail: str) -> AnswerOutcome:
    """A failed outcome: the user reads a sentence for ``code``; ``detail`` is for staff and the log."""
    outcome.status, outcome.error_code = Message.Status.FAILED, code
    outcome.error, outcome.error_detail = events.failure_sentence(code), detail
    return outcome


def _readable(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else f"{type(exc).__name__} (no details)"


def _count_missing_usage(outcome: AnswerOutcome, request: Any) -> None:
    """Servers may ignore ``stream_options.include_usage``: count what they did not report."""
    if outcome.prompt_tokens and outcome.completion_tokens:
        return
    if not outcome.prompt_tokens:
        outcome.prompt_tokens = sum(count_tokens(m["content"]) for m in request.messages)
    if not outcome.completion_tokens and outcome.content:
        outcome.completion_tokens = count_tokens(outcome.content)
