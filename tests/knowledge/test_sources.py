"""Synced sources against the real parts: a server folder and an S3 prefix on the test S3 server, PostgreSQL, the
embedder, rq's cron scheduler in its own process and a real worker."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import uuid

import pytest
from django.contrib.auth.models import Group, User
from django.test import override_settings

from knowledge.ingestion import document_ingest
from knowledge.models import Document, Source, SourceRun
from knowledge.search import search_chunks
from knowledge.sources.services import source_sync
from protostar.storage import minio_client
from tests.conftest import ROOT, wait_until, worker_database_url

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]

PUMP = "# Pump manual\n\nThe XR-7710 pump needs a new seal kit every 18 months.\n"
VACATION_OLD = "# 휴가 규정\n\n정규직 직원의 연차 휴가는 입사 첫해 15일입니다.\n"
VACATION_NEW = "# 휴가 규정\n\n정규직 직원의 연차 휴가는 입사 첫해 20일이며, 반차 제도가 새로 생겼습니다.\n"
CAFETERIA = "# 구내식당\n\n구내식당은 평일 오전 11시 30분부터 운영하며 금요일에는 특식이 나옵니다.\n"


@pytest.fixture
def queued(monkeypatch) -> list[int]:
    ids: list[int] = []
    monkeypatch.setattr("knowledge.services.document_ingest_enqueue", lambda *, document_id: ids.append(document_id))
    return ids


def _ingest_queued(queued: list[int]) -> None:
    while queued:
        document_ingest(document_id=queued.pop(0))


def _texts_found(query: str, user) -> str:
    return "\n".join(hit.text for hit in search_chunks(query=query, user=user, k=5))


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "shared"
    (root / "manuals").mkdir(parents=True)
    with override_settings(SOURCE_FOLDER_ROOTS=[str(tmp_path)]):
        yield root


def test_folder_source_gains_changes_and_loses_files_and_the_knowledge_base_follows_in_one_run(
    folder, queued, admin_user
):
    (folder / "manuals" / "pump.md").write_text(PUMP)
    (folder / "규정").mkdir()
    (folder / "규정" / "휴가 안내.md").write_text(VACATION_OLD)
    (folder / ".hidden.md").write_text("# Editor backup\n\nnot a document\n")
    source = Source.objects.create(name="Shared drive", kind=Source.Kind.FOLDER, location=str(folder))
    first = source_sync(source_id=source.pk)
    assert (first.status, first.added, first.updated, first.removed, first.failed) == ("done", 2, 0, 0, 0)
    _ingest_queued(queued)
    assert "seal kit" in _texts_found("XR-7710 pump seal kit", admin_user)
    assert "15일" in _texts_found("연차 휴가는 며칠인가요?", admin_user)
    vacation = Document.objects.get(source=source, source_path="규정/휴가 안내.md")

    (folder / "manuals" / "pump.md").unlink()
    (folder / "규정" / "휴가 안내.md").write_text(VACATION_NEW)
    (folder / "cafeteria.md").write_text(CAFETERIA)
    second = source_sync(source_id=source.pk)
    assert (second.added, second.updated, second.removed, second.unchanged, second.failed) == (1, 1, 1, 0, 0)
    assert {(item["path"], item["action"]) for item in second.details} == {
        ("cafeteria.md", "added"),
        ("규정/휴가 안내.md", "updated"),
        ("manuals/pump.md", "removed"),
    }
    _ingest_queued(queued)
    assert not Document.objects.filter(source_path="manuals/pump.md").exists()
    assert "seal kit" not in _texts_found("XR-7710 pump seal kit", admin_user), "a deleted file is not searchable"
    found = _texts_found("연차 휴가는 며칠인가요?", admin_user)
    assert "20일" in found and "15일" not in found
    assert Document.objects.get(source=source, source_path="규정/휴가 안내.md").pk == vacation.pk, "updated in place"
    assert "특식" in _texts_found("금요일 구내식당 특식", admin_user)

    third = source_sync(source_id=source.pk)
    assert (third.added, third.updated, third.removed, third.unchanged) == (0, 0, 0, 2)
    assert queued == [], "unchanged files are not ingested again"


def test_a_source_keeps_its_documents_visible_only_to_its_groups(folder, queued):
    (folder / "pump.md").write_text(PUMP)
    engineers = Group.objects.create(name="engineers")
    member = User.objects.create_user("member", password="x")
    member.groups.add(engineers)
    outsider = User.objects.create_user("outsider", password="x")
    source = Source.objects.create(name="Engineering", kind=Source.Kind.FOLDER, location=str(folder))
    source.allowed_groups.add(engineers)
    source_sync(source_id=source.pk)
    _ingest_queued(queued)
    assert "seal kit" in _texts_found("XR-7710 pump seal kit", member)
    assert "seal kit" not in _texts_found("XR-7710 pump seal kit", outsider)


def test_a_folder_that_cannot_be_listed_fails_the_run_and_removes_nothing(folder, queued):
    (folder / "pump.md").write_text(PUMP)
    source = Source.objects.create(name="Mounted share", kind=Source.Kind.FOLDER, location=str(folder))
    source_sync(source_id=source.pk)
    folder.rename(folder.with_name("unmounted"))
    run = source_sync(source_id=source.pk)
    assert run.status == SourceRun.Status.FAILED
    assert run.error == "The folder does not exist on the server."
    assert Document.objects.filter(source=source).count() == 1


def test_a_folder_outside_the_allowed_roots_is_refused(tmp_path, queued):
    source = Source.objects.create(name="Etc", kind=Source.Kind.FOLDER, location="/etc")
    with override_settings(SOURCE_FOLDER_ROOTS=[str(tmp_path)]):
        run = source_sync(source_id=source.pk)
    assert run.status == SourceRun.Status.FAILED
    assert "outside the folders this server may sync" in run.error
    assert not Document.objects.exists()


def test_unsupported_files_are_reported_as_failures_with_their_reason(folder, queued):
    (folder / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    (folder / "notes.md").write_text("# Notes\n\nShort notes.\n")
    source = Source.objects.create(name="Mixed", kind=Source.Kind.FOLDER, location=str(folder))
    run = source_sync(source_id=source.pk)
    assert (run.added, run.failed) == (1, 1)
    failure = next(item for item in run.details if item["action"] == "failed")
    assert failure["path"] == "photo.png" and failure["reason"]


@pytest.fixture
def bucket():
    client = minio_client()
    name = f"sync-{uuid.uuid4().hex[:12]}"
    client.make_bucket(bucket_name=name)
    yield name
    for item in client.list_objects(bucket_name=name, recursive=True):
        client.remove_object(bucket_name=name, object_name=item.object_name)
    client.remove_bucket(bucket_name=name)


def _put(bucket: str, key: str, text: str) -> None:
    data = text.encode()
    minio_client().put_object(bucket_name=bucket, object_name=key, data=io.BytesIO(data), length=len(data))


def test_s3_prefix_source_mirrors_only_the_objects_under_its_prefix(bucket, queued, admin_user):
    _put(bucket, "policies/vacation.md", VACATION_OLD)
    _put(bucket, "policies/2026/cafeteria.md", CAFETERIA)
    _put(bucket, "private/pump.md", PUMP)
    source = Source.objects.create(name="Policies", kind=Source.Kind.S3, location=bucket, prefix="policies/")
    run = source_sync(source_id=source.pk)
    assert (run.status, run.added) == ("done", 2)
    assert set(Document.objects.filter(source=source).values_list("source_path", flat=True)) == {
        "policies/vacation.md",
        "policies/2026/cafeteria.md",
    }
    _put(bucket, "policies/vacation.md", VACATION_NEW)
    minio_client().remove_object(bucket_name=bucket, object_name="policies/2026/cafeteria.md")
    run = source_sync(source_id=source.pk)
    assert (run.added, run.updated, run.removed) == (0, 1, 1)
    _ingest_queued(queued)
    assert "20일" in _texts_found("연차 휴가는 며칠인가요?", admin_user)


def test_the_cron_scheduler_queues_a_due_source_and_a_worker_syncs_and_ingests_it(bucket, live_workers, admin_user):
    _put(bucket, "handbook/pump.md", PUMP)
    source = Source.objects.create(
        name="Handbook", kind=Source.Kind.S3, location=bucket, prefix="handbook/", sync_interval_minutes=60
    )
    env = {**os.environ, "DATABASE_URL": worker_database_url(), "SOURCE_SYNC_TICK_SECONDS": "1"}
    scheduler = subprocess.Popen(
        [sys.executable, "manage.py", "sourcescheduler"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(
            lambda: Document.objects.filter(source=source, status=Document.Status.READY).exists(),
            timeout=180,
            interval=0.5,
            message="the scheduled sync to ingest the bucket's file",
        )
    finally:
        scheduler.terminate()
        scheduler.wait(timeout=30)
    run = SourceRun.objects.get(source=source)
    assert (run.status, run.added) == ("done", 1)
    assert "seal kit" in _texts_found("XR-7710 pump seal kit", admin_user)


def test_admin_shows_each_runs_additions_updates_removals_and_failures(folder, queued, admin_client):
    (folder / "notes.md").write_text("# Notes\n\nShort notes.\n")
    (folder / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    source = Source.objects.create(name="Shared", kind=Source.Kind.FOLDER, location=str(folder))
    source_sync(source_id=source.pk)
    changelist = admin_client.get("/admin/knowledge/source/").content.decode()
    assert "Shared" in changelist and "+1 ~0 −0 ✗1" in changelist
    page = admin_client.get(f"/admin/knowledge/source/{source.pk}/change/").content.decode()
    assert "notes.md" in page and "photo.png" in page and "added" in page and "failed" in page
