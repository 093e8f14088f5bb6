"""The HTTP side of the test server: OpenAI routes, SSE streaming, scripted failures, and the control routes."""

from __future__ import annotations

import base64
import json
import select
import socket
import struct
import sys
import time
import uuid
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from tests.llmserver.content import count_words, default_reply, hashed_embedding, split_pieces, text_of
from tests.llmserver.script import DEFAULT_MODEL, HTTP_FAILURES, MAX_STALL_SECONDS, STREAM_FAILURES, Script

if TYPE_CHECKING:
    from tests.llmserver import LLMTestServer


class Server(ThreadingHTTPServer):
    daemon_threads = True
    # Benchmarks open ~100 streams at once; the socketserver default backlog of 5 would drop connects.
    request_queue_size = 512
    owner: LLMTestServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up (closed streams, timeouts, keep-alive connections dropped) are routine here.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the request log at /_requests replaces access logging

    # -- plumbing --
    def _read_json(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return json.loads(raw or b"{}")

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _send_error(self, status: int, message: str, script: Script | None = None) -> None:
        headers = {}
        if script is not None and script.retry_after is not None:
            headers["Retry-After"] = f"{script.retry_after:g}"
        kind = "rate_limit_exceeded" if status == 429 else "server_error" if status >= 500 else "invalid_request_error"
        self._send_json(status, {"error": {"message": message, "type": kind, "code": str(status)}}, headers)

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _sse(self, payload: Any) -> None:
        text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
        self._write_chunk(f"data: {text}\n\n".encode())

    # -- routing --
    def do_GET(self) -> None:
        owner = self.server.owner
        if self.path == "/_requests":
            self._send_json(200, owner.requests)
        elif self.path.rstrip("/") == "/v1/models":
            data = [{"id": name, "object": "model", "created": 0, "owned_by": "protostar"} for name in owner.models]
            self._send_json(200, {"object": "list", "data": data})
        else:
            self._send_error(404, f"No route for GET {self.path}")

    def do_POST(self) -> None:
        try:
            body = self._read_json()
        except (ValueError, UnicodeDecodeError) as exc:
            self._send_error(400, f"Request body is not JSON: {exc}")
            return
        route = {
            "/_script": self._control_script,
            "/_reset": self._control_reset,
            "/v1/chat/completions": self._chat,
            "/v1/embeddings": self._embeddings,
        }.get(self.path.rstrip("/"))
        if route is None:
            self._send_error(404, f"No route for POST {self.path}")
            return
        try:
            route(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client went away: nothing to tell it

    def _control_script(self, body: dict[str, Any]) -> None:
        try:
            self.server.owner.script(**asdict(Script.from_dict(body)))
        except (TypeError, ValueError) as exc:
            self._send_error(400, str(exc))
            return
        self._send_json(200, {"ok": True})

    def _control_reset(self, body: dict[str, Any]) -> None:
        self.server.owner.reset()
        self._send_json(200, {"ok": True})

    def _admit(self, body: dict[str, Any]) -> Script | None:
        """Log the request, check the key and model, apply HTTP failures; the script to follow, or None if answered."""
        owner = self.server.owner
        owner.record(self.path, body)
        script = owner.book.take()
        if owner.api_key and self.headers.get("Authorization") != f"Bearer {owner.api_key}":
            self._send_error(401, "Incorrect API key provided.")
            return None
        if owner.strict_models and body.get("model") not in owner.models:
            self._send_error(404, f"The model `{body.get('model')}` does not exist.")
            return None
        failure = script.failure
        if failure and HTTP_FAILURES.match(failure):
            self._send_error(int(failure), f"Scripted failure {failure}.", script)
            return None
        return script

    # -- chat --
    def _chat(self, body: dict[str, Any]) -> None:
        script = self._admit(body)
        if script is None:
            return
        messages = body.get("messages") or []
        reply = script.reply if script.reply is not None else default_reply(messages)
        pieces = split_pieces(reply)
        usage = {"prompt_tokens": count_words(messages), "completion_tokens": len(pieces)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        model = body.get("model") or DEFAULT_MODEL
        if body.get("stream"):
            self._chat_stream(body, script, pieces, usage, model)
        else:
            self._chat_whole(script, reply, pieces, usage, model)

    def _chat_whole(self, script: Script, reply: str, pieces: list[str], usage: dict, model: str) -> None:
        if script.failure in STREAM_FAILURES:
            if script.failure == "stall":
                self._stall()
            self._abort()
            return
        if script.tokens_per_second:
            self.server.owner.stopping.wait(len(pieces) / script.tokens_per_second)
        choice = {"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}
        payload = {"id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion", "created": int(time.time())}
        self._send_json(200, {**payload, "model": model, "choices": [choice], "usage": usage})

    def _chat_stream(self, body: dict, script: Script, pieces: list[str], usage: dict, model: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        base = {"id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion.chunk"}
        base |= {"created": int(time.time()), "model": model, "system_fingerprint": None}

        def chunk(delta: dict, finish: str | None = None, **extra: Any) -> dict:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return {**base, "choices": [choice], **extra}

        self._sse(chunk({"role": "assistant", "content": ""}))
        if not self._emit_pieces(script, pieces, chunk):
            return
        self._sse(chunk({}, "stop"))
        wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        if script.include_usage if script.include_usage is not None else wants_usage:
            self._sse({**base, "choices": [], "usage": usage})
        self._sse("[DONE]")
        self._write_chunk(b"")  # zero-length chunk: end of body

    def _emit_pieces(self, script: Script, pieces: list[str], chunk) -> bool:
        """Write the content chunks, paced and failing as scripted; False when the stream was cut short."""
        stopping = self.server.owner.stopping
        failure = script.failure
        stop_at: int | None = None
        if failure in STREAM_FAILURES:
            position = script.stall_after_tokens if failure == "stall" else script.cut_after_tokens
            stop_at = position or 0
        started = time.monotonic()
        for index, piece in enumerate(pieces):
            if stop_at is not None and index >= stop_at:
                break
            if script.tokens_per_second:
                # An absolute schedule: pacing does not drift with the time spent writing.
                delay = started + index / script.tokens_per_second - time.monotonic()
                if delay > 0 and stopping.wait(delay):
                    self._abort()
                    return False
            self._sse(chunk({"content": piece}, x_emitted_at=time.time()))
        if failure == "stall":
            self._stall()
            self._abort()
            return False
        if failure == "cut":
            self._write_chunk(b"")  # a well-formed end of body, but no finish_reason and no [DONE]
            self.close_connection = True
            return False
        if failure == "abort":
            self._abort()
            return False
        return True

    def _stall(self) -> None:
        """Hold the connection silent until the client leaves, the server stops or the stall limit passes."""
        deadline = time.monotonic() + MAX_STALL_SECONDS
        while time.monotonic() < deadline and not self.server.owner.stopping.is_set():
            readable, _, _ = select.select([self.connection], [], [], 0.05)
            if readable:
                try:
                    if not self.connection.recv(1, socket.MSG_PEEK):
                        return  # orderly close by the client
                except OSError:
                    return
                time.sleep(0.05)  # a pipelined request waiting to be read: do not spin on it

    def _abort(self) -> None:
        """Drop the connection mid-response; RST rather than FIN so the client cannot mistake it for an end."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass

    # -- embeddings --
    def _embeddings(self, body: dict[str, Any]) -> None:
        script = self._admit(body)
        if script is None:
            return
        if script.failure in STREAM_FAILURES:
            if script.failure == "stall":
                self._stall()
            self._abort()
            return
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else list(texts or [])
        dimensions = script.embedding_dimensions or body.get("dimensions") or self.server.owner.embedding_dimensions
        data = []
        for index, text in enumerate(texts):
            vector = hashed_embedding(text_of(text), int(dimensions))
            if body.get("encoding_format") == "base64":
                encoded: Any = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            else:
                encoded = vector
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        tokens = sum(len(text_of(t).split()) for t in texts)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        self._send_json(200, {"object": "list", "data": data, "model": body.get("model"), "usage": usage})
