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
