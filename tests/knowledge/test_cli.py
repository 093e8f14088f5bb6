"""`manage.py ingest` goes through the same service as the admin; `--wait --json` reports every file."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from knowledge.models import Document
from tests.conftest import ROOT, worker_database_url
from tests.knowledge import pdf_factory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(240)]


def _ingest(*args: str) -> list[dict]:
    import os

    env = {**os.environ, "DATABASE_URL": worker_database_url()}
    result = subprocess.run(
        [sys.executable, "manage.py", "ingest", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=200
    )
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def test_ingest_folder_waits_and_reports_ready_failed_rejected_and_duplicate(tmp_path, live_workers, settings):
    folder = tmp_path / "docs" / "nested"
    folder.mkdir(parents=True)
    (folder / "guide.md").write_text("# 안내\n\n점검 주기는 석 달입니다.\n", encoding="utf-8")
    (tmp_path / "docs" / "report.pdf").write_bytes(pdf_factory.make_pdf(["Quarterly report page."]))
    (tmp_path / "docs" / "locked.pdf").write_bytes(pdf_factory.make_encrypted_pdf(["hidden"]))
    (tmp_path / "docs" / "tool.pdf").write_bytes(pdf_factory.make_elf_bytes())

    rows = {row["path"].rsplit("/", 1)[1]: row for row in _ingest(str(tmp_path / "docs"), "--wait", "--json")}
    assert rows["guide.md"]["status"] == "ready" and rows["guide.md"]["chunks"] >= 1
    assert rows["report.pdf"]["status"] == "ready" and rows["report.pdf"]["pages"] == 1
    assert rows["locked.pdf"]["status"] == "failed" and "password" in rows["locked.pdf"]["error"]
    assert rows["tool.pdf"]["status"] == "rejected" and rows["tool.pdf"]["id"] is None
    assert Document.objects.count() == 3

    again = _ingest(str(folder / "guide.md"), "--json")
    assert again[0]["status"] == "duplicate" and again[0]["id"] == rows["guide.md"]["id"]


def test_reprocess_stale_gives_documents_ingested_before_windows_their_windows(live_workers):
    from io import StringIO

    from django.core.management import call_command

    from knowledge.models import ChunkWindow
    from knowledge.services import document_upload
    from tests.conftest import wait_until

    text = "# 연차 규정\n\n정규직 직원은 매월 1.5일의 유급휴가가 발생합니다. Unused leave expires on 31 March.\n"
    outcome = document_upload(data=text.encode(), filename="leave.md")
    document = outcome.document
    wait_until(lambda: Document.objects.get(pk=document.pk).status == Document.Status.READY, timeout=120)
    fresh = Document.objects.get(pk=document.pk)
    assert ChunkWindow.objects.filter(chunk__document=fresh).exists()
    ChunkWindow.objects.filter(chunk__document=fresh).delete()  # as if ingested before windows existed

    dry = StringIO()
    call_command("reprocess", "--stale", "--dry-run", stdout=dry)
    assert f"{fresh.pk}\t" in dry.getvalue() and "Would queue 1 document(s)" in dry.getvalue()
    assert Document.objects.get(pk=fresh.pk).status == Document.Status.READY  # a dry run changes nothing

    out = StringIO()
    call_command("reprocess", "--stale", stdout=out)
    assert "Queued 1 document(s)" in out.getvalue()
    wait_until(lambda: ChunkWindow.objects.filter(chunk__document_id=fresh.pk).exists(), timeout=120)
    assert Document.objects.get(pk=fresh.pk).status == Document.Status.READY

    quiet = StringIO()
    call_command("reprocess", "--stale", stdout=quiet)
    assert "Queued 0 document(s)" in quiet.getvalue()


def test_reprocess_refuses_unclear_or_unknown_selections():
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="exactly one"):
        call_command("reprocess")
    with pytest.raises(CommandError, match="exactly one"):
        call_command("reprocess", "--stale", "--all")
    with pytest.raises(CommandError, match="No document with id 987654"):
        call_command("reprocess", "987654")
