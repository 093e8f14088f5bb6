"""Reading many model streams in one process: our ``OpenAITokenStream`` against the SDK read the plain way.

The chat worker streams up to ``CHAT_WORKER_THREADS`` answers at once. This measures only the model-reading side:
N answers from the OpenAI-compatible test server (its own process, so its CPU is not counted), each consumed by a
thread as the chat job does. Baseline in the same run: one thread per answer iterating
``client.chat.completions.create(stream=True)`` of the official SDK. A third variant reads our stream over the SDK's
default transport (h11 over anyio) instead of its aiohttp one (our default). Printed per variant: process CPU per token,
wall time against the ideal (the paced answer length), and how many pieces reached the reader (fewer than tokens =
the reader fell behind and pieces queued up).

    PROTOSTAR_DATA_DIR=.data/bench-chat .venv/bin/python bench/model_stream.py [--n 100] [--tokens 200] [--tps 30]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PROTOSTAR_DATA_DIR", str(ROOT / ".data" / "bench-chat"))
os.environ.setdefault("LOG_LEVEL", "WARNING")


def start_llm_server() -> tuple[subprocess.Popen, str]:
    command = [sys.executable, "-m", "tests.llmserver", "--port", "0", "--print-url"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    return server, server.stdout.readline().strip()


def sdk_pieces(client, messages: list[dict]) -> Iterator[str]:
    for chunk in client.chat.completions.create(model="test-model", messages=messages, stream=True):
        for choice in chunk.choices[:1]:
            if choice.delta is not None and choice.delta.content:
                yield choice.delta.content


def run_variant(n: int, open_stream: Callable[[], Iterator[str]]) -> tuple[float, float, int]:
    """(process CPU seconds, wall seconds, pieces read) for n answers read at once, one thread each."""
    counts = [0] * n

    def read(index: int) -> None:
        for _piece in open_stream():
            counts[index] += 1

    threads = [threading.Thread(target=read, args=(i,)) for i in range(n)]
    cpu, wall = time.process_time(), time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.process_time() - cpu, time.perf_counter() - wall, sum(counts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--tps", type=float, default=30.0)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of each variant")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object at the end")
    args = parser.parse_args()

    server, base_url = start_llm_server()
    os.environ["LLM_BASE_URL"] = base_url
    os.environ["CHAT_MODEL_BACKEND"] = "protostar.llm.openai.OpenAIChatModel"
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "protostar.settings")
    django.setup()
    import openai

    from protostar.llm.base import ChatRequest
    from protostar.llm.openai import OpenAIChatModel
    from tests.llmserver import remote_script

    try:
        remote_script(base_url, reply=" ".join(f"t{i:04d}" for i in range(args.tokens)), tokens_per_second=args.tps)
        messages = [{"role": "user", "content": "hello"}]
        ours = OpenAIChatModel()

        class DefaultTransportModel(OpenAIChatModel):
            def _new_async_client(self) -> openai.AsyncOpenAI:
                return openai.AsyncOpenAI(base_url=self.base_url, api_key="not-needed", max_retries=0)

        ours_default_transport = DefaultTransportModel()
        sdk = openai.OpenAI(base_url=base_url, api_key="not-needed", max_retries=0)
        variants = {
            "SDK stream objects, thread per answer (baseline)": lambda: sdk_pieces(sdk, messages),
            "OpenAITokenStream (one event loop, httpx-sse)": lambda: iter(ours.stream(ChatRequest(messages=messages))),
            "the same over the SDK's default transport": lambda: iter(
                ours_default_transport.stream(ChatRequest(messages=messages))
            ),
        }
        ideal = args.tokens / args.tps
        total_tokens = args.n * args.tokens
        print(f"{args.n} answers × {args.tokens} tokens at {args.tps:g} tokens/s (ideal wall {ideal:.1f} s)")
        results: dict[str, list[tuple[float, float, int]]] = {name: [] for name in variants}
        for _round in range(args.rounds):
            for name, open_stream in variants.items():
                results[name].append(run_variant(args.n, open_stream))
        for name, rows in results.items():
            cpu = min(row[0] for row in rows)
            wall = min(row[1] for row in rows)
            pieces = min(row[2] for row in rows)
            print(
                f"{name:50s} CPU/token {cpu / total_tokens * 1000:.3f} ms | wall {wall:.1f} s "
                f"({wall / ideal:.2f}× ideal) | pieces read {pieces} of {total_tokens}"
            )
        base_cpu = min(row[0] for row in results[next(iter(variants))])
        our_cpu = min(row[0] for row in results[list(variants)[1]])
        print(f"ratio CPU ours/baseline: {our_cpu / base_cpu:.2f}")
        if args.json:
            print(json.dumps(json_result(args, results, ideal), ensure_ascii=False))
    finally:
        server.terminate()
        server.wait(10)


def json_result(args: argparse.Namespace, results: dict[str, list[tuple[float, float, int]]], ideal: float) -> dict:
    """The common result shape of ``bench/report.py``: a row per reader, the CPU ratio against its goal."""
    total_tokens = args.n * args.tokens
    rows = [
        {
            "reader": name,
            "CPU ms per token": round(min(row[0] for row in runs) / total_tokens * 1000, 3),
            "wall × ideal": round(min(row[1] for row in runs) / ideal, 2),
        }
        for name, runs in results.items()
    ]
    ratio = rows[1]["CPU ms per token"] / rows[0]["CPU ms per token"]
    checks = [
        {"figure": "CPU ours / baseline", "value": round(ratio, 2), "goal": "< 1"},
        {"figure": "wall × ideal (ours)", "value": rows[1]["wall × ideal"], "goal": "<= 1.1"},
    ]
    return {"config": vars(args), "rows": rows, "checks": checks}


if __name__ == "__main__":
    main()
