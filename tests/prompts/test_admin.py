"""The prompt admin pages through the Django test client, as a superuser, a plain staff user and a non-staff user."""

from __future__ import annotations

import pytest
from django.urls import reverse

from prompts.models import PromptVersion
from prompts.selectors import prompt_active_version_id
from prompts.services import prompt_version_create

pytestmark = pytest.mark.django_db

GOOD_BODY = "관리자 버전 {{ language }}: {{ previous_summary }}{% for t in turns %} {{ t.content }}{% endfor %}"


def url(name: str, *args) -> str:
    return reverse(f"admin:{name}", args=args)


@pytest.fixture
def version(admin_user) -> PromptVersion:
    return prompt_version_create(name="summarize", body=GOOD_BODY, note="한국어 메모", created_by=admin_user)


def post_version(client, body: str, **extra):
    data = {"name": "summarize", "body": body, "note": "tighter", **extra}
    return client.post(url("prompts_promptversion_add"), data)


def test_changelist_lists_every_prompt_with_description_and_default_state(admin_client):
    response = admin_client.get(url("prompts_promptversion_changelist"))
    assert response.status_code == 200
    for name in ("answer_system", "answer_extractive", "summarize"):
        assert name in response.text
    assert "conversation summary" in response.text


def test_admin_index_links_to_the_prompt_list(admin_client):
    response = admin_client.get(reverse("admin:index"))
    assert url("prompts_promptversion_changelist") in response.text


def test_prompt_page_shows_versions_history_and_rollback_button(admin_client, version, admin_user):
    admin_client.post(url("prompts_promptversion_activate", version.pk))
    response = admin_client.get(url("prompts_prompt_detail", "summarize"))
    assert response.status_code == 200
    assert "한국어 메모" in response.text
    assert "Roll back to the shipped default" in response.text
    assert "previous_summary" in response.text  # the declared variables table


def test_add_form_starts_from_the_active_text(admin_client):
    response = admin_client.get(url("prompts_promptversion_add") + "?name=summarize")
    assert response.status_code == 200
    assert "You maintain the memory of a conversation" in response.text


def test_saving_a_valid_version_creates_it_and_redirects(admin_client, admin_user):
    response = post_version(admin_client, GOOD_BODY, activate="on")
    assert response.status_code == 302
    assert response["Location"] == url("prompts_prompt_detail", "summarize")
    saved = PromptVersion.objects.get()
    assert (saved.body, saved.created_by, saved.is_active) == (GOOD_BODY, admin_user, True)


def test_a_version_with_an_undeclared_variable_is_refused_with_a_form_error(admin_client):
    response = post_version(admin_client, "{{ language }} {{ user_name }}")
    assert response.status_code == 200
    assert "uses undeclared variable(s) user_name" in response.text
    assert not PromptVersion.objects.exists()


def test_a_version_with_a_syntax_error_is_refused_naming_the_line(admin_client):
    response = post_version(admin_client, "first line\n{% for t in turns %}{{ t.role }}")
    assert response.status_code == 200
    assert "template syntax error on line 2" in response.text
    assert not PromptVersion.objects.exists()


def test_preview_button_renders_samples_and_diff_without_saving(admin_client):
    response = post_version(admin_client, GOOD_BODY + "\n<script>alert(1)</script>", _preview="1")
    assert response.status_code == 200
    assert "관리자 버전 ko: - 사용자: 박민아" in response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text
    assert "<script>alert(1)</script>" not in response.text
    assert not PromptVersion.objects.exists()


def test_diff_against_the_default_is_escaped(admin_client, admin_user):
    body = "{{ language }} <img src=x onerror=alert(1)>"
    version = prompt_version_create(name="summarize", body=body, note="x", created_by=admin_user)
    response = admin_client.get(url("prompts_promptversion_diff", version.pk))
    assert response.status_code == 200
    assert "+{{ language }} &lt;img src=x onerror=alert(1)&gt;" in response.text
    assert "-You maintain the memory" in response.text
    assert "<img src=x" not in response.text


def test_version_page_and_previews_render(admin_client, version):
    assert admin_client.get(url("prompts_promptversion_change", version.pk)).status_code == 200
    response = admin_client.get(url("prompts_promptversion_preview", version.pk))
    assert response.status_code == 200
    assert "관리자 버전 en: - User: Mina Park" in response.text
    response = admin_client.get(url("prompts_prompt_preview", "answer_extractive"))
    assert response.status_code == 200
    assert "언어 모델이 설정되어 있지 않아" in response.text


def test_activate_then_rollback_through_the_admin(admin_client, version):
    response = admin_client.post(url("prompts_promptversion_activate", version.pk))
    assert response.status_code == 302
    assert prompt_active_version_id(name="summarize") == version.pk
    response = admin_client.post(url("prompts_prompt_rollback", "summarize"))
    assert response.status_code == 302
    assert prompt_active_version_id(name="summarize") is None


def test_use_default_through_the_admin(admin_client, version):
    admin_client.post(url("prompts_promptversion_activate", version.pk))
    response = admin_client.post(url("prompts_prompt_use_default", "summarize"))
    assert response.status_code == 302
    assert prompt_active_version_id(name="summarize") is None


def test_rollback_with_nothing_to_undo_shows_a_message(admin_client):
    response = admin_client.post(url("prompts_prompt_rollback", "summarize"), follow=True)
    assert response.status_code == 200
    assert "nothing to roll back" in response.text


def test_actions_refuse_get(admin_client, version):
    assert admin_client.get(url("prompts_promptversion_activate", version.pk)).status_code == 405
    assert prompt_active_version_id(name="summarize") is None


def test_unknown_prompt_page_is_404(admin_client):
    assert admin_client.get(url("prompts_prompt_detail", "nope")).status_code == 404


def test_non_staff_user_is_sent_to_login_and_changes_nothing(client, django_user_model, version):
    client.force_login(django_user_model.objects.create_user(username="reader", password="pw"))
    pages = [
        url("prompts_promptversion_changelist"),
        url("prompts_promptversion_add"),
        url("prompts_prompt_detail", "summarize"),
    ]
    for page in pages:
        response = client.get(page)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))
    response = client.post(url("prompts_promptversion_activate", version.pk))
    assert response.status_code == 302
    assert prompt_active_version_id(name="summarize") is None


def test_staff_without_prompt_permissions_is_forbidden(client, staff_user, version):
    client.force_login(staff_user)
    assert client.get(url("prompts_promptversion_changelist")).status_code == 403
    assert client.post(url("prompts_promptversion_activate", version.pk)).status_code == 403
    assert post_version(client, GOOD_BODY).status_code == 403
    assert prompt_active_version_id(name="summarize") is None
