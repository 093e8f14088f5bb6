"""The scripted LLM server process (``chat_stream.py llm-server``) and its control endpoints."""

from __future__ import annotations

import json
import signal
import threading
from typing import Any

from bench.chatstream.common import TAG


def serve_llm(port: int) -> None:
    """The stock scripted server plus an emission log (``GET /_emissions``, ``POST /_emissions_clear``)."""
    from tests.llmserver import LLMTestServer
    from tests.llmserver.handler import Handler, Server

    log: list[tuple[str, str, float]] = []
    lock = threading.Lock()

    class EmissionHandler(Handler):
        bench_tag = ""

        def _chat(self, body: dict[str, Any]) -> None:
            users = [m for m in body.get("messages") or [] if m.get("role") == "user"]
            found = TAG.search(str(users[-1].get("content", ""))) if users else None
            self.bench_tag = found.group(1) if found else ""
            super()._chat(body)

        def _sse(self, payload: Any) -> None:
            super()._sse(payload)
            if isinstance(payload, dict) and "x_emitted_at" in payload:
                with lock:
                    log.append((self.bench_tag, payload["choices"][0]["delta"]["content"], payload["x_emitted_at"]))

        def do_GET(self) -> None:
            if self.path == "/_emissions":
                with lock:
                    entries = list(log)
                self._send_json(200, entries)
            else:
                super().do_GET()

        def do_POST(self) -> None:
            if self.path == "/_emissions_clear":
                self._read_json()
                with lock:
                    log.clear()
                self._send_json(200, {"ok": True})
            else:
                super().do_POST()

    class EmissionServer(LLMTestServer):
        def start(self) -> EmissionServer:
            self.stopping.clear()
            self._server = Server((self.host, self.port), EmissionHandler)
            self._server.owner = self
            self.port = self._server.server_address[1]
            self._thread = threading.Thread(target=self._server.serve_forever, name="llm-test-server", daemon=True)
            self._thread.start()
            return self

    server = EmissionServer("127.0.0.1", port).start()
    done = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: done.set())
    print(server.base_url, flush=True)
    while not done.wait(0.5):
        pass
    server.stop()


def control(base_url: str, path: str, payload: dict | None = None) -> Any:
    import urllib.request

    root = base_url.removesuffix("/v1")
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(root + path, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def server_log(base_url: str) -> tuple[dict[tuple[str, str], float], dict[str, float]]:
    """Emission time per (question tag, token text) and the time each tagged question reached the model."""
    emissions: dict[tuple[str, str], float] = {}
    for tag, text, emitted_at in control(base_url, "/_emissions"):
        emissions[(tag, text)] = emitted_at
    received_at: dict[str, float] = {}
    for request in control(base_url, "/_requests"):
        users = [m for m in request.get("messages") or [] if m.get("role") == "user"]
        found = TAG.search(str(users[-1].get("content", ""))) if users else None
        if found and request.get("path", "").endswith("/chat/completions"):
            received_at.setdefault(found.group(1), request["received_at"])
    return emissions, received_at
