"""``python -m tests.llmserver --port 0 --print-url``: serve until SIGTERM (benchmarks run it this way)."""

from __future__ import annotations

import argparse
import signal
import threading

from tests.llmserver import LLMTestServer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="OpenAI-compatible test server (serves until SIGTERM).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--print-url", action="store_true", help="print the base URL (…/v1) once listening")
    parser.add_argument("--embedding-dimensions", type=int, default=384)
    args = parser.parse_args(argv)
    server = LLMTestServer(args.host, args.port, embedding_dimensions=args.embedding_dimensions).start()
    done = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: done.set())
    if args.print_url:
        print(server.base_url, flush=True)
    while not done.wait(0.5):
        pass
    server.stop()


if __name__ == "__main__":
    main()
