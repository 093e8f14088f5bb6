"""Documents are never stuck: a knowledge worker killed mid-document, PostgreSQL restarted mid-ingest, a queue that
lost its job. Each ends ``ready`` (or ``failed`` with a reason), and staff see how many runs it took."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.faults.stack import ROOT, FaultStack, wait_for

pytestmark = pytest.mark.timeout(900)
RECOVERY_GOAL_SECONDS = 30


def long_document(folder: Path, name: str) -> Path:
    """A Markdown handbook of a dozen sections, Korean and English: several embedding batches long, so it is still
    being processed when the test looks (a short one could be ready before ``ingest`` returns)."""
    sections = []
    for index in range(12):
        korean = f"제{index}조 근무 규정. 직원은 매월 1.5일의 유급휴가를 받으며 연간 최대 18일까지 적립됩니다. " * 3
        english = f"Section {index}. Employees may work remotely up to three days a week with approval. " * 3
        sections.append(f"## 규정 {index} Rules {index}\n\n{korean}\n\n{english}\n")
    path = folder / name
    path.write_text(f"# {name} 직원 안내서\n\n" + "\n".join(sections), encoding="utf-8")
    return path


def ingest_waiting(stack: FaultStack, path: Path) -> subprocess.CompletedProcess:
    """``manage.py ingest PATH --wait`` as an operator runs it (it should not wait out its --timeout with no worker)."""
    return subprocess.run(
        [sys.executable, "manage.py", "ingest", str(path), "--wait", "--timeout", "900"],
        cwd=ROOT,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def processing(stack: FaultStack, document_id: int) -> bool:
    document = stack.document(document_id)
    return document["status"] == "processing" and document["progress_done"] > 0


def ends(stack: FaultStack, document_id: int, timeout: float) -> dict:
    return wait_for(
        lambda: stack.document(document_id)["status"] in {"ready", "failed"} and stack.document(document_id),
        timeout=timeout,
        message=f"document {document_id} to end",
        interval=0.2,
    )


def test_a_queued_document_whose_job_was_lost_is_queued_again_and_operators_are_told(fresh, tmp_path, daphne_port):
    # No knowledge worker runs: the previous tests' were stopped (a killed one no longer beats, so it no longer counts).
    started = time.monotonic()
    waited = ingest_waiting(fresh, long_document(tmp_path, "lost.md"))
    # `ingest --wait` with no knowledge worker says so at once instead of waiting out its --timeout.
    assert waited.returncode != 0 and "No knowledge worker is listening" in waited.stderr
    assert "queued" in waited.stdout and time.monotonic() - started < 300
    document_id = fresh.sql("SELECT max(id) FROM knowledge_document")[0][0]
    assert fresh.document(document_id)["status"] == "queued"

    health = fetch_health(daphne_port)
    assert health["ok"] is False and health["stalled_queues"].get("knowledge") == 1

    conn = fresh.redis()
    conn.delete("rq:queue:knowledge", f"rq:job:ingest-document-{document_id}")  # the queue lost it (Redis wiped)
    fresh.start_worker("knowledge")
    document = ends(fresh, document_id, timeout=400)
    assert document["status"] == "ready" and document["attempt_count"] == 1
    assert fresh.unfinished_documents() == 0


def test_a_killed_knowledge_worker_stops_counting_as_listening_once_its_pulse_is_overdue(fresh, tmp_path, daphne_port):
    from rq import Worker

    killed = fresh.start_worker("knowledge")
    killed.kill()
    killed_at = time.monotonic()
    document_id = fresh.ingest(long_document(tmp_path, "unheard.md"))
    live_within = float(fresh.env["WORKER_LIVE_SECONDS"])
    wait_for(
        lambda: fetch_health(daphne_port)["stalled_queues"].get("knowledge") == 1,
        timeout=live_within + 20,
        message="/healthz to name the knowledge queue as stalled",
        interval=0.5,
    )
    print(f"knowledge worker killed → /healthz names its queue stalled after {time.monotonic() - killed_at:.1f} s")
    # rq itself still lists the dead worker (its key outlives it by minutes): the pulse is what tells them apart.
    assert killed.pid in {worker.pid for worker in Worker.all(connection=fresh.redis())}
    waited = ingest_waiting(fresh, long_document(tmp_path, "unheard-2.md"))
    assert waited.returncode != 0 and "No knowledge worker is listening" in waited.stderr

    fresh.start_worker("knowledge")
    wait_for(lambda: fresh.unfinished_documents() == 0, timeout=400, message="both documents to end", interval=0.5)
    assert fresh.document(document_id)["status"] == "ready"


def test_a_document_whose_knowledge_worker_is_killed_is_run_again_and_ends_ready(fresh, tmp_path):
    first = fresh.start_worker("knowledge")
    document_id = fresh.ingest(long_document(tmp_path, "killed.md"))
    wait_for(lambda: processing(fresh, document_id), timeout=60, message="the document half processed")
    first.kill()
    killed_at = time.monotonic()
    fresh.start_worker("knowledge")
    document = ends(fresh, document_id, timeout=400)
    print(f"knowledge worker killed → document {document['status']} in {time.monotonic() - killed_at:.1f} s")
    assert document["status"] == "ready" and document["chunk_count"] > 0 and document["error"] == ""
    assert document["attempt_count"] == 2, "staff see that it took a second run"
    assert fresh.unfinished_documents() == 0


def test_a_document_ingesting_while_postgres_restarts_ends_ready(fresh, tmp_path):
    worker = fresh.start_worker("knowledge")
    document_id = fresh.ingest(long_document(tmp_path, "postgres.md"))
    wait_for(lambda: processing(fresh, document_id), timeout=60, message="the document half processed")
    fresh.restart("postgres")
    back_at = time.monotonic()
    document = wait_for(
        lambda: fresh.document(document_id)["status"] in {"ready", "failed"} and fresh.document(document_id),
        timeout=400,
        message="the document to end",
        interval=0.2,
    )
    print(f"PostgreSQL back → document {document['status']} in {time.monotonic() - back_at:.1f} s")
    assert document["status"] == "ready" and document["chunk_count"] > 0
    assert worker.alive(), "the worker reconnected by itself"
    assert fresh.unfinished_documents() == 0


def fetch_health(port: int) -> dict:
    import json

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:  # 503 while a part is down
        return json.loads(exc.read())
