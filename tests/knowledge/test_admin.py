"""The staff's admin pages for documents: multi-file upload, list, detail with chunks, actions, download."""

from __future__ import annotations

import httpx
import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from knowledge.ingestion import document_ingest
from knowledge.models import Chunk, Document
from tests.knowledge import pdf_factory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def in_process(monkeypatch):
    monkeypatch.setattr("knowledge.services.document_ingest_enqueue", lambda *, document_id: None)


def _upload(admin_client, *files):
    return admin_client.post(reverse("admin:knowledge_document_upload"), {"files": list(files)}, follow=True)


def test_several_files_upload_at_once_with_a_message_each(admin_client):
    response = _upload(
        admin_client,
        SimpleUploadedFile("a.md", b"# A\n\nFirst document."),
        SimpleUploadedFile("b.txt", "두 번째 문서입니다.".encode()),
        SimpleUploadedFile("evil.pdf", pdf_factory.make_elf_bytes()),
    )
    assert response.status_code == 200
    text = response.content.decode().lower()  # the admin capitalises the first letter of each message
    assert "a.md: uploaded and queued" in text and "b.txt: uploaded and queued" in text
    assert "evil.pdf: rejected" in text and "executable" in text
    assert Document.objects.count() == 2


def test_uploading_an_existing_file_says_it_already_exists(admin_client):
    _upload(admin_client, SimpleUploadedFile("a.md", b"# Same\n\nbytes"))
    response = _upload(admin_client, SimpleUploadedFile("copy.md", b"# Same\n\nbytes"))
    assert "copy.md: already exists" in response.content.decode().lower()
    assert Document.objects.count() == 1


def test_oversized_upload_is_refused_with_the_limit(admin_client, settings):
    settings.UPLOAD_MAX_BYTES = 100
    response = _upload(admin_client, SimpleUploadedFile("big.txt", b"x" * 500))
    text = response.content.decode().lower()
    assert "big.txt: rejected" in text and "limit" in text
    assert not Document.objects.exists()


def test_changelist_shows_status_progress_and_failure_reason(admin_client):
    _upload(admin_client, SimpleUploadedFile("locked.pdf", pdf_factory.make_encrypted_pdf(["secret text"])))
    document = Document.objects.get()
    document_ingest(document_id=document.pk)
    response = admin_client.get(reverse("admin:knowledge_document_changelist") + "?status__exact=failed")
    text = response.content.decode()
    assert response.status_code == 200 and "locked" in text and "password" in text.lower()
    assert "<progress" in text
    assert admin_client.get(reverse("admin:knowledge_document_changelist") + "?q=locked").status_code == 200


def test_detail_page_lists_extracted_chunks_read_only(admin_client):
    _upload(admin_client, SimpleUploadedFile("guide.pdf", pdf_factory.make_pdf(["Page one text.", "Page two text."])))
    document = Document.objects.get()
    document_ingest(document_id=document.pk)
    response = admin_client.get(reverse("admin:knowledge_document_change", args=[document.pk]))
    text = response.content.decode()
    assert response.status_code == 200
    assert "Extracted chunks" in text and "Page two text." in text
    assert 'name="sha256"' not in text, "processing fields are read-only"


def test_reprocess_action_requeues_and_delete_action_removes_object(admin_client):
    _upload(admin_client, SimpleUploadedFile("a.md", b"# A\n\nText to reprocess."))
    document = Document.objects.get()
    document_ingest(document_id=document.pk)
    changelist = reverse("admin:knowledge_document_changelist")
    admin_client.post(changelist, {"action": "reprocess_selected", "_selected_action": [document.pk]})
    document.refresh_from_db()
    assert document.status == Document.Status.QUEUED
    name = document.file.name
    admin_client.post(changelist, {"action": "delete_selected", "_selected_action": [document.pk], "post": "yes"})
    assert not Document.objects.exists() and not Chunk.objects.exists()
    assert not default_storage.exists(name)


def test_download_gives_the_original_bytes_through_a_presigned_url(admin_client):
    data = pdf_factory.make_pdf(["Downloadable original."])
    _upload(admin_client, SimpleUploadedFile("original.pdf", data))
    document = Document.objects.get()
    response = admin_client.get(reverse("admin:knowledge_document_download", args=[document.pk]))
    assert response.status_code == 302
    fetched = httpx.get(response["Location"], timeout=10)
    assert fetched.status_code == 200 and fetched.content == data
    assert "original.pdf" in fetched.headers["content-disposition"]


def test_document_pages_refuse_non_staff(client, django_user_model):
    user = django_user_model.objects.create_user("reader", password="pw-12345-long")
    client.force_login(user)
    response = client.get(reverse("admin:knowledge_document_upload"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_changelist_warns_about_documents_ingested_before_windows(admin_client):
    from knowledge.models import ChunkWindow

    _upload(admin_client, SimpleUploadedFile("guide.md", "# 안내\n\n점검 주기는 석 달입니다.\n".encode()))
    document = Document.objects.get()
    document_ingest(document_id=document.pk)
    changelist = reverse("admin:knowledge_document_changelist")
    assert "ingested before sentence windows" not in admin_client.get(changelist).content.decode()

    ChunkWindow.objects.filter(chunk__document=document).delete()  # as an upgraded installation has them

    text = admin_client.get(changelist).content.decode()
    assert "1 ready document(s) were ingested before sentence windows" in text and "reprocess --stale" in text
