"""Documents are private until published: who reads what through search, the document pages, downloads and the
admin, for staff, group members, other users and holders of ``knowledge.view_all_documents``."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from knowledge.models import Document
from knowledge.search import search_chunks
from knowledge.selectors import documents_visible_to
from knowledge.services import document_set_visibility, document_upload
from tests.knowledge.factories import ready_document

pytestmark = pytest.mark.django_db

HR_CHUNKS = [
    ("급여", "2025년 임원 성과급은 기본급의 40퍼센트로 확정되었습니다. Executive bonus is 40 percent of base pay.")
]
PUBLIC_CHUNKS = [("Cafeteria", "The cafeteria opens at 8 a.m. 구내식당은 오전 8시에 문을 엽니다.")]


@pytest.fixture(autouse=True)
def no_ingestion(monkeypatch):
    monkeypatch.setattr("knowledge.services._enqueue_ingest_on_commit", lambda document_id: None)


@pytest.fixture
def people(django_user_model):
    hr = Group.objects.create(name="인사팀")
    member = django_user_model.objects.create_user("hr-member", password="pw-long-enough-1")
    member.groups.add(hr)
    other = django_user_model.objects.create_user("other-user", password="pw-long-enough-2")
    staff = django_user_model.objects.create_user("prompt-editor", password="pw-long-enough-3", is_staff=True)
    auditor = django_user_model.objects.create_user("auditor", password="pw-long-enough-4")
    auditor.user_permissions.add(Permission.objects.get(codename="view_all_documents"))
    return {"group": hr, "member": member, "other": other, "staff": staff, "auditor": auditor}


def _titles(query: str, user) -> list[str]:
    return [hit.title for hit in search_chunks(query=query, user=user, k=10)]


def test_an_upload_without_a_choice_is_staff_only_until_published(people):
    outcome = document_upload(data="# 안내\n\n사내 공지입니다.".encode(), filename="notice.md")
    document = outcome.document
    assert document.visibility == Document.Visibility.STAFF
    assert not documents_visible_to(people["other"]).filter(pk=document.pk).exists()
    assert not documents_visible_to(people["member"]).filter(pk=document.pk).exists()
    assert documents_visible_to(people["staff"]).filter(pk=document.pk).exists()
    assert documents_visible_to(people["auditor"]).filter(pk=document.pk).exists()

    document_set_visibility(document=document, visibility=Document.Visibility.ALL_USERS)
    assert documents_visible_to(people["other"]).filter(pk=document.pk).exists()


def test_the_default_visibility_is_a_setting(settings, people):
    settings.DOCUMENT_DEFAULT_VISIBILITY = "all_users"
    document = document_upload(data=b"Everyone may read this.", filename="open.txt").document
    assert document.visibility == Document.Visibility.ALL_USERS
    assert documents_visible_to(people["other"]).filter(pk=document.pk).exists()


def test_group_documents_reach_members_and_permission_holders_but_not_staff_status(people):
    secret = ready_document(title="임원 보수", chunks=HR_CHUNKS, visibility=Document.Visibility.GROUPS)
    secret.allowed_groups.set([people["group"]])
    ready_document(title="Cafeteria", chunks=PUBLIC_CHUNKS)

    for query in ("executive bonus", "임원 성과급"):
        assert "임원 보수" in _titles(query, people["member"])
        assert "임원 보수" in _titles(query, people["auditor"])
        assert "임원 보수" not in _titles(query, people["other"])
        # Staff status alone opens nothing: a staff member allowed to edit prompts is not in HR.
        assert "임원 보수" not in _titles(query, people["staff"])
        assert "Cafeteria" in _titles(query, people["other"])


def test_uploads_reject_groups_without_group_visibility_and_group_visibility_without_groups(people):
    no_groups = document_upload(data=b"a", filename="a.txt", visibility="groups")
    assert no_groups.status == "rejected" and "at least one group" in no_groups.reason
    stray = document_upload(data=b"b", filename="b.txt", visibility="all_users", groups=[people["group"]])
    assert stray.status == "rejected" and "Groups only apply" in stray.reason
    unknown = document_upload(data=b"c", filename="c.txt", visibility="world")
    assert unknown.status == "rejected" and "Unknown visibility" in unknown.reason
    assert Document.objects.count() == 0


def test_document_page_and_download_follow_the_rule_and_hide_unready_documents(client, people):
    secret = ready_document(title="임원 보수", chunks=HR_CHUNKS, visibility=Document.Visibility.GROUPS)
    secret.allowed_groups.set([people["group"]])
    queued = ready_document(title="Draft", chunks=PUBLIC_CHUNKS)
    Document.objects.filter(pk=queued.pk).update(status=Document.Status.QUEUED)

    client.force_login(people["other"])
    assert client.get(reverse("knowledge:document-file", args=[secret.pk])).status_code == 404
    assert client.get(reverse("knowledge:document", args=[secret.pk])).status_code == 404
    assert client.get(reverse("knowledge:document-file", args=[queued.pk])).status_code == 404
    client.force_login(people["member"])
    response = client.get(reverse("knowledge:document-file", args=[secret.pk]))
    assert response.status_code == 302 and "X-Amz-Signature" in response["Location"]


def test_admin_download_list_and_retrieval_test_follow_the_rule_for_staff(client, people):
    secret = ready_document(title="임원 보수", chunks=HR_CHUNKS, visibility=Document.Visibility.GROUPS)
    secret.allowed_groups.set([people["group"]])
    staff = people["staff"]
    staff.user_permissions.add(*Permission.objects.filter(codename__in=["view_document", "change_document"]))
    client.force_login(staff)
    assert client.get(reverse("admin:knowledge_document_download", args=[secret.pk])).status_code == 404
    listing = client.get(reverse("admin:knowledge_document_changelist")).content.decode()
    assert "임원 보수" not in listing
    page = client.get(reverse("admin:knowledge_document_search"), {"query": "executive bonus", "k": 5})
    assert page.status_code == 200 and "임원 보수" not in page.content.decode()
    assert "only the documents you may read" in page.content.decode()

    staff.user_permissions.add(Permission.objects.get(codename="view_all_documents"))
    client.force_login(type(staff).objects.get(pk=staff.pk))
    assert client.get(reverse("admin:knowledge_document_download", args=[secret.pk])).status_code == 302
    page = client.get(reverse("admin:knowledge_document_search"), {"query": "임원 성과급", "k": 5})
    assert "임원 보수" in page.content.decode() and "every document" in page.content.decode()


def test_admin_upload_chooses_groups_or_everyone(admin_client, people):
    url = reverse("admin:knowledge_document_upload")
    response = admin_client.post(
        url,
        {
            "files": [SimpleUploadedFile("hr.md", "# 인사\n\n인사 규정".encode())],
            "visibility": "groups",
            "groups": [people["group"].pk],
        },
        follow=True,
    )
    assert "hr.md: uploaded and queued" in response.content.decode().lower()
    document = Document.objects.get(original_filename="hr.md")
    assert document.visibility == "groups" and list(document.allowed_groups.all()) == [people["group"]]
    refused = admin_client.post(url, {"files": [SimpleUploadedFile("x.md", b"# X")], "visibility": "groups"})
    assert "at least one group" in refused.content.decode()
    admin_client.post(url, {"files": [SimpleUploadedFile("all.md", b"# All\n\nfor all")], "visibility": "all_users"})
    assert Document.objects.get(original_filename="all.md").visibility == "all_users"


def test_ingest_command_takes_groups_or_all_users(tmp_path, people):
    (tmp_path / "hr.md").write_text("# 인사\n\n인사 평가 기준", encoding="utf-8")
    (tmp_path / "open.md").write_text("# Open\n\nFor everyone", encoding="utf-8")
    (tmp_path / "private.md").write_text("# Private\n\nStaff only", encoding="utf-8")

    def ingest(*args: str) -> dict:
        out = StringIO()
        call_command("ingest", *args, "--json", stdout=out)
        return json.loads(out.getvalue().splitlines()[0])

    hr = Document.objects.get(pk=ingest(str(tmp_path / "hr.md"), "--group", "인사팀")["id"])
    assert hr.visibility == "groups" and [g.name for g in hr.allowed_groups.all()] == ["인사팀"]
    everyone = Document.objects.get(pk=ingest(str(tmp_path / "open.md"), "--all-users")["id"])
    assert everyone.visibility == "all_users"
    private = Document.objects.get(pk=ingest(str(tmp_path / "private.md"))["id"])
    assert private.visibility == "staff"
    with pytest.raises(CommandError, match="no group named 'nobody'"):
        call_command("ingest", str(tmp_path / "hr.md"), "--group", "nobody")
    with pytest.raises(CommandError):
        call_command("ingest", str(tmp_path / "hr.md"), "--group", "인사팀", "--all-users")
