"""Documents and search over the HTTP API against a live daphne and the real knowledge worker: upload (one or many,
with visibility), the admin's checks, duplicates and rejections, listing with filters and pages, chunks, reprocess,
delete, and search with its score parts. Staff operations need the ``manage`` scope and the staff permissions."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth.models import Group

from knowledge.models import Document
from tests.chat.conftest import CHUNKS
from tests.conftest import wait_until
from tests.knowledge.factories import ready_document
from tests.live import api_client, api_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(240)]
KOREAN_NOTE = "# 보안 점검\n\n서버실 출입 기록은 매주 금요일에 검토합니다. 외부 방문자는 사전 등록이 필요합니다.\n"
ENGLISH_NOTE = "Badge audit. The access log of the server room is reviewed every Friday.\n"


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_superuser("api-staff", password="pw-123456")


@pytest.fixture
def reader(django_user_model):
    return django_user_model.objects.create_user("api-reader", password="pw-123456")


def finished(document_id: int) -> Document:
    def done():
        document = Document.objects.get(pk=document_id)
        return document if document.status in (Document.Status.READY, Document.Status.FAILED) else None

    return wait_until(done, timeout=120, interval=0.25, message=f"document {document_id} to be ingested")


def test_staff_upload_several_files_with_groups_and_see_duplicates_and_rejections(
    api_server, staff, reader, live_workers
):
    hr = Group.objects.create(name="인사팀")
    unique = uuid.uuid4().hex
    files = [
        ("files", ("보안-점검.md", (KOREAN_NOTE + unique).encode(), "text/markdown")),
        ("files", ("badges.txt", (ENGLISH_NOTE + unique).encode(), "text/plain")),
        ("files", ("tool.exe", b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" * 20, "application/octet-stream")),
    ]
    with api_client(api_server, api_key(staff, "manage", "read")) as client:
        response = client.post("/api/v1/documents", files=files, data={"groups": ["인사팀"]})
        assert response.status_code == 201, response.text
        results = response.json()["results"]
        assert [(r["filename"], r["status"]) for r in results] == [
            ("보안-점검.md", "queued"),
            ("badges.txt", "queued"),
            ("tool.exe", "rejected"),
        ]
        assert results[2]["document"] is None and "not a document" in results[2]["reason"]
        assert results[0]["document"]["groups"] == ["인사팀"]
        again = client.post("/api/v1/documents", files=files[:1])
        assert again.status_code == 200
        assert again.json()["results"][0]["status"] == "duplicate"
        assert again.json()["results"][0]["document"]["id"] == results[0]["document"]["id"]
        rejected = client.post("/api/v1/documents", files=files[2:])
        assert rejected.status_code == 400 and rejected.json()["results"][0]["status"] == "rejected"
        unknown = client.post("/api/v1/documents", files=files[:1], data={"groups": ["no-such-group"]})
        assert (unknown.status_code, unknown.json()["code"]) == (422, "invalid") and "groups" in unknown.json()[
            "detail"
        ]
        for result in results[:2]:
            assert finished(result["document"]["id"]).status == Document.Status.READY
        detail = client.get(f"/api/v1/documents/{results[0]['document']['id']}").json()
        assert (detail["status"], detail["progress_percent"], detail["chunk_count"] > 0) == ("ready", 100, True)
    assert set(Document.objects.get(pk=results[0]["document"]["id"]).allowed_groups.all()) == {hr}
    # A reader outside the group cannot tell the document from one that does not exist.
    with api_client(api_server, api_key(reader, "read")) as client:
        hidden = client.get(f"/api/v1/documents/{results[0]['document']['id']}")
        missing = client.get("/api/v1/documents/999999")
        assert hidden.status_code == missing.status_code == 404
        assert client.get("/api/v1/documents").json()["count"] == 0


def test_a_key_without_manage_or_a_user_without_staff_rights_cannot_upload(api_server, staff, reader):
    files = [("files", ("note.txt", f"{ENGLISH_NOTE} {uuid.uuid4().hex}".encode(), "text/plain"))]
    with api_client(api_server, api_key(staff, "read", "ask")) as client:
        refused = client.post("/api/v1/documents", files=files)
        assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")
        assert "manage" in refused.json()["detail"]
    with api_client(api_server, api_key(reader, "read", "ask")) as client:
        assert client.post("/api/v1/documents", files=files).status_code == 403
    assert not Document.objects.exists()


def test_documents_are_listed_with_filters_and_pages_and_their_chunks_read(api_server, reader):
    handbook = ready_document(title="Employee Handbook", chunks=CHUNKS)
    other = ready_document(title="출장 규정", chunks=[("출장", "국내 출장비는 실비로 정산합니다.")])
    Document.objects.filter(pk=other.pk).update(status=Document.Status.FAILED, error="internal parser detail")
    with api_client(api_server, api_key(reader, "read")) as client:
        page = client.get("/api/v1/documents", params={"limit": 1}).json()
        assert page["count"] == 2 and [d["title"] for d in page["items"]] == ["출장 규정"]
        second = client.get("/api/v1/documents", params={"limit": 1, "offset": 1}).json()
        assert [d["title"] for d in second["items"]] == ["Employee Handbook"]
        ready = client.get("/api/v1/documents", params={"status": "ready", "type": "text/plain"}).json()
        assert [d["id"] for d in ready["items"]] == [handbook.pk]
        later = client.get("/api/v1/documents", params={"uploaded_after": "2999-01-01T00:00:00Z"}).json()
        assert later["count"] == 0
        bad = client.get("/api/v1/documents", params={"status": "done"})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "status"
        failed = client.get(f"/api/v1/documents/{other.pk}").json()
        assert failed["status"] == "failed" and failed["error"] == "", "ingestion details are for staff"
        chunks = client.get(f"/api/v1/documents/{handbook.pk}/chunks").json()
        assert chunks["count"] == 3
        assert [c["ordinal"] for c in chunks["items"]] == [0, 1, 2] and chunks["items"][2]["section"] == "휴가 규정"


def test_staff_reprocess_and_delete_documents_and_readers_cannot(api_server, staff, reader, live_workers):
    handbook = ready_document(title="Employee Handbook", chunks=CHUNKS)
    with api_client(api_server, api_key(reader, "read", "ask")) as client:
        assert client.post(f"/api/v1/documents/{handbook.pk}/reprocess").status_code == 403
        assert client.delete(f"/api/v1/documents/{handbook.pk}").status_code == 403
    with api_client(api_server, api_key(staff, "read", "manage")) as client:
        # The factory's document has no stored file: reprocessing it fails, as it would in the admin.
        reprocessed = client.post(f"/api/v1/documents/{handbook.pk}/reprocess")
        assert reprocessed.status_code == 202 and reprocessed.json()["status"] == "queued"
        assert finished(handbook.pk).status == Document.Status.FAILED
        assert client.delete(f"/api/v1/documents/{handbook.pk}").status_code == 204
        assert client.get(f"/api/v1/documents/{handbook.pk}").status_code == 404
        assert client.delete(f"/api/v1/documents/{handbook.pk}").status_code == 404
    assert not Document.objects.filter(pk=handbook.pk).exists()


def test_search_returns_ranked_hits_with_score_parts_in_korean_and_english(api_server, reader):
    handbook = ready_document(title="Employee Handbook", chunks=CHUNKS)
    with api_client(api_server, api_key(reader, "read")) as client:
        korean = client.post("/api/v1/search", json={"query": "연간 유급휴가 며칠", "k": 2}).json()["hits"]
        english = client.post("/api/v1/search", json={"query": "remote work days", "k": 3}).json()["hits"]
        scoped = client.post("/api/v1/search", json={"query": "remote work", "document_ids": [handbook.pk + 1]})
        vector = client.post("/api/v1/search", json={"query": "remote work", "mode": "vector"}).json()["hits"]
        empty = client.post("/api/v1/search", json={"query": "!!!"})
        bad_k = client.post("/api/v1/search", json={"query": "leave", "k": 0})
    assert len(korean) == 2 and "유급휴가" in korean[0]["text"]
    assert english[0]["section"] == "Remote work"
    assert all(set(hit) >= {"score", "vector_rank", "keyword_rank", "window_rank", "sparse_rank"} for hit in english)
    assert english[0]["score"] >= english[-1]["score"] and english[0]["keyword_rank"] == 1
    assert scoped.json()["hits"] == []
    assert vector and all(hit["keyword_rank"] is None and hit["vector_rank"] for hit in vector)
    assert empty.status_code == 422 and empty.json()["errors"][0]["field"] == "query"
    assert bad_k.status_code == 422 and bad_k.json()["errors"][0]["field"] == "k"
