"""Throughput as worker processes are added: answers/s and ingestion pages/s with 1 and 2 processes per queue.

    .venv/bin/python bench/scale.py [--questions 48] [--sockets 8] [--pdfs 8 --pages-per-pdf 4 --texts 4] [--json]

Both rounds run the same cluster (``protostar.cluster``: one web node, N chat, N knowledge and one summaries worker,
each started with its Procfile command) on the same PostgreSQL, Redis and S3, the same corpus and the same
questions; the ratio compares them. Answers use the offline extractive answerer, so the embedder and retrieval are
the limit. CPU is the user + system time of the cluster's processes and the data servers (and all their children)
over each phase, so it holds on a machine shared with other work; "per core" figures are per CPU-second spent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.ingest import build_corpus
from bench.stack import prepare

ROOT = Path(__file__).resolve().parents[1]
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def process_table() -> dict[int, tuple[int, float, int]]:
    """``{pid: (parent pid, cpu seconds, rss bytes)}`` of every process (what /proc shows)."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        table[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS, int(fields[21]) * PAGE)
    return table


def tree(table: dict, roots: list[int]) -> set[int]:
    """``roots`` and all their descendants."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, stack = set(), [p for p in roots if p in table]
    while stack:
        pid = stack.pop()
        if pid not in found:
            found.add(pid)
            stack.extend(children.get(pid, []))
    return found


def cpu_seconds(roots: list[int]) -> float:
    table = process_table()
    return sum(table[pid][1] for pid in tree(table, roots))


def data_server_pids() -> list[int]:
    from django.conf import settings

    from protostar.services.launcher import Launcher

    return [pid for service in Launcher(settings.DATA_DIR).services if (pid := service.pid)]


def wait_warm(cluster, kinds: tuple[str, ...], timeout: float = 180) -> None:
    """Until every worker of ``kinds`` finished its warm-up (it logs the start-up freeze after it)."""
    deadline = time.monotonic() + timeout
    nodes = [node for kind in kinds for node in cluster.workers(kind)]
    while not all("objects loaded at start-up" in node.log_path.read_text(errors="replace") for node in nodes):
        if time.monotonic() > deadline:
            raise TimeoutError("workers did not finish their warm-up")
        time.sleep(0.2)


def ingest(cluster, corpus, roots: list[int]) -> dict:
    from knowledge.models import Document
    from knowledge.services import document_upload

    cpu0, started = cpu_seconds(roots), time.perf_counter()
    ids = [document_upload(data=data, filename=name).document.pk for name, data, _ in corpus]
    while Document.objects.filter(pk__in=ids).exclude(status__in=["ready", "failed"]).exists():
        time.sleep(0.2)
    elapsed, cpu = time.perf_counter() - started, cpu_seconds(roots) - cpu0
    failed = Document.objects.filter(pk__in=ids, status="failed").count()
    if failed:
        raise SystemExit(f"{failed} documents failed to ingest")
    pages = sum(p for *_, p in corpus)
    return {
        "seconds": elapsed,
        "pages": pages,
        "pages_per_s": pages / elapsed,
        "cpu_s": cpu,
        "pages_per_cpu_s": pages / cpu,
    }


async def ask_all(url: str, cookie: str, questions: list[str], sockets: int) -> None:
    import websockets

    async def one_socket(batch: list[str]) -> None:
        headers = {"Cookie": cookie, "Origin": url}
        ws_url = url.replace("http://", "ws://") + "/ws/chat/"
        async with websockets.connect(ws_url, additional_headers=headers, max_size=None, open_timeout=30) as ws:
            for question in batch:
                await ws.send(
                    json.dumps(
                        {"type": "ask", "conversation": None, "content": question, "client_id": uuid.uuid4().hex},
                        ensure_ascii=False,
                    )
                )
            pending = len(batch)
            while pending:
                event = json.loads(await asyncio.wait_for(ws.recv(), 300))
                if event["type"] in ("end", "error") and "message" in event:
                    pending -= 1
                    if event["type"] == "error":
                        raise SystemExit(f"an answer failed: {event}")

    await asyncio.gather(*(one_socket(questions[i::sockets]) for i in range(sockets)))


def answer(cluster, cookie: str, questions: list[str], sockets: int, roots: list[int]) -> dict:
    cpu0, started = cpu_seconds(roots), time.perf_counter()
    asyncio.run(ask_all(cluster.url, cookie, questions, sockets))
    elapsed, cpu = time.perf_counter() - started, cpu_seconds(roots) - cpu0
    count = len(questions)
    return {
        "seconds": elapsed,
        "answers": count,
        "answers_per_s": count / elapsed,
        "cpu_s": cpu,
        "cpu_ms_per_answer": cpu / count * 1000,
        "answers_per_cpu_s": count / cpu,
    }


def memory(cluster) -> dict[str, float]:
    """Resident memory (MiB) per process kind, the largest of its processes (children included)."""
    table = process_table()
    sizes: dict[str, float] = {}
    for node in cluster.nodes.values():
        rss = sum(table[pid][2] for pid in tree(table, [node.pid])) / 2**20
        sizes[node.kind] = max(sizes.get(node.kind, 0.0), rss)
    return sizes


def run_round(processes: int, corpus, questions: list[str], sockets: int) -> dict:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    from knowledge.models import Document
    from knowledge.services import document_delete
    from protostar.cluster import Cluster, Topology
    from protostar.prometheus import clear

    for document in Document.objects.all():
        document_delete(document=document)
    run_dir = settings.DATA_DIR / f"scale-{processes}"
    (run_dir / "metrics").mkdir(parents=True, exist_ok=True)
    clear(str(run_dir / "metrics"))
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(run_dir / "metrics"),
        "CHAT_MODEL_BACKEND": "protostar.llm.local.ExtractiveChatModel",
        "LLM_BASE_URL": "",
        "LOG_LEVEL": "INFO",
    }
    topology = Topology(web=1, chat=processes, knowledge=processes, summaries=1, balancer=False)
    cluster = Cluster(root=ROOT, run_dir=run_dir, env=env, redis_url=settings.REDIS_URL, topology=topology)
    cluster.start()
    try:
        wait_warm(cluster, ("chat", "knowledge"))
        servers = data_server_pids()
        knowledge = [node.pid for node in cluster.workers("knowledge")]
        ingestion = ingest(cluster, corpus, knowledge + servers)
        user, _ = get_user_model().objects.get_or_create(username="bench-scale")
        client = Client()
        client.force_login(user)
        cookie = f"sessionid={client.cookies['sessionid'].value}"
        chat_side = [node.pid for node in cluster.nodes.values() if node.kind in ("web", "chat", "summaries")]
        answers = answer(cluster, cookie, questions, sockets, chat_side + servers)
        return {"processes": processes, "ingestion": ingestion, "answers": answers, "memory_mib": memory(cluster)}
    finally:
        cluster.stop()


def report(rounds: list[dict]) -> None:
    cores = os.cpu_count() or 1
    print(f"machine: {cores} cores (shared: figures are noisy)")
    print(
        f"{'per queue':>9} {'answers/s':>10} {'CPU ms/answer':>14} {'answers/CPU-s':>14} "
        f"{'pages/s':>8} {'pages/CPU-s':>12}"
    )
    for r in rounds:
        a, i = r["answers"], r["ingestion"]
        print(
            f"{r['processes']:>9} {a['answers_per_s']:>10.2f} {a['cpu_ms_per_answer']:>14.1f} "
            f"{a['answers_per_cpu_s']:>14.2f} {i['pages_per_s']:>8.2f} {i['pages_per_cpu_s']:>12.2f}"
        )
    one, two = rounds
    print(
        f"ratio 2/1: answers/s {two['answers']['answers_per_s'] / one['answers']['answers_per_s']:.2f}, "
        f"pages/s {two['ingestion']['pages_per_s'] / one['ingestion']['pages_per_s']:.2f} "
        f"(bounded by {cores} cores)"
    )
    print(
        "memory per process (MiB, largest of each kind, 2 per queue): "
        + ", ".join(f"{kind} {mib:.0f}" for kind, mib in two["memory_mib"].items())
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=48)
    parser.add_argument("--sockets", type=int, default=8)
    parser.add_argument("--pdfs", type=int, default=8)
    parser.add_argument("--pages-per-pdf", type=int, default=4)
    parser.add_argument("--texts", type=int, default=4)
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args()
    prepare()
    corpus = build_corpus(args.pdfs, args.pages_per_pdf, args.texts)
    golden = [json.loads(line)["question"] for line in (ROOT / "bench/golden/questions.jsonl").open(encoding="utf-8")]
    questions = [golden[i % len(golden)] for i in range(args.questions)]
    rounds = [run_round(n, corpus, questions, args.sockets) for n in (1, 2)]
    if args.json:
        print(json.dumps({"cores": os.cpu_count(), "rounds": rounds}, indent=2))
    else:
        report(rounds)


if __name__ == "__main__":
    main()
