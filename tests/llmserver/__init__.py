"""An OpenAI-compatible HTTP server for tests and benchmarks, standard library only.

It speaks enough of the real wire format (``/v1/chat/completions`` streaming and not, ``/v1/embeddings``,
``/v1/models``) for the official ``openai`` SDK, and can be told to misbehave: HTTP errors with ``Retry-After``,
stalls, and streams cut before ``[DONE]``.

In-process::

    with LLMTestServer() as server:
        server.script(reply="Hello there [S1].", tokens_per_second=30)
        ...  # point LLM_BASE_URL at server.base_url
        server.requests  # what it received

Out of process: ``python -m tests.llmserver --port 0 --print-url`` prints the base URL and serves until
SIGTERM; ``remote_script(base_url, ...)`` / ``remote_requests(base_url)`` drive it over HTTP
(``POST /_script``, ``GET /_requests``, ``POST /_reset``).

Every streamed content chunk carries ``x_emitted_at`` (server ``time.time()`` when written) so a benchmark can
measure relay latency from the model to the browser; the SDK ignores unknown fields.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from dataclasses import asdict
from typing import Any

from tests.llmserver.content import default_reply, hashed_embedding, split_pieces
from tests.llmserver.handler import Handler, Server
from tests.llmserver.script import DEFAULT_MODEL, Script, ScriptBook

__all__ = [
    "LLMTestServer",
    "Script",
    "default_reply",
    "hashed_embedding",
    "remote_requests",
    "remote_reset",
    "remote_script",
    "split_pieces",
]


class LLMTestServer:
    """A scripted OpenAI-compatible server on a background thread. ``port=0`` picks a free port.

    ``api_key``: when set, requests without ``Authorization: Bearer <api_key>`` get 401.
    ``models``: what ``/v1/models`` lists; with ``strict_models`` other model names get 404.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        api_key: str | None = None,
        models: list[str] | None = None,
        strict_models: bool = False,
        embedding_dimensions: int = 384,
    ) -> None:
        self.host, self.port = host, port
        self.api_key = api_key
        self.models = models or [DEFAULT_MODEL]
        self.strict_models = strict_models
        self.embedding_dimensions = embedding_dimensions
        self.book = ScriptBook()
        self._log_lock = threading.Lock()
        self._requests: list[dict[str, Any]] = []
        self.stopping = threading.Event()
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> LLMTestServer:
        self.stopping.clear()
        self._server = Server((self.host, self.port), Handler)
        self._server.owner = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="llm-test-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()  # releases stalls and paced streams
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> LLMTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What an OpenAI client takes as ``base_url``."""
        return f"{self.url}/v1"

    def script(
        self,
        reply: str | None = None,
        tokens_per_second: float | None = None,
        fail: str | None = None,
        retry_after: float | None = None,
        stall_after_tokens: int | None = None,
        cut_after_tokens: int | None = None,
        times: int | None = None,
        include_usage: bool | None = None,
        embedding_dimensions: int | None = None,
    ) -> None:
        """Replace the behaviour for the next ``times`` model requests (None: until changed). See ``Script``."""
        args = {k: v for k, v in locals().items() if k != "self"}
        self.book.set(Script(**args))

    def reset(self) -> None:
        """Default behaviour and an empty request log."""
        self.book.set(Script())
        self.clear_requests()

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Received model requests, oldest first: ``path``, ``received_at`` (time.time()), ``model``, ``messages``,
        ``stream``, ``input``, ``dimensions``."""
        with self._log_lock:
            return [dict(entry) for entry in self._requests]

    def clear_requests(self) -> None:
        with self._log_lock:
            self._requests.clear()

    def record(self, path: str, body: dict[str, Any]) -> None:
        """Log a model request (the handler calls this on receipt, before any scripted failure)."""
        entry = {"path": path, "received_at": time.time(), "model": body.get("model")}
        entry |= {key: body.get(key) for key in ("messages", "stream", "input", "dimensions")}
        with self._log_lock:
            self._requests.append(entry)


def _control(base_url: str, path: str, payload: dict[str, Any] | None = None) -> Any:
    root = base_url.rstrip("/").removesuffix("/v1")
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(root + path, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def remote_script(base_url: str, **script: Any) -> None:
    """``LLMTestServer.script`` for a server in another process (same keyword arguments)."""
    _control(base_url, "/_script", asdict(Script(**script)))


def remote_requests(base_url: str) -> list[dict[str, Any]]:
    return _control(base_url, "/_requests")


def remote_reset(base_url: str) -> None:
    _control(base_url, "/_reset", {})
