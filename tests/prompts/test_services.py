"""Versions, activation and roll back against the real database."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from prompts.errors import PromptSyntaxError, UndeclaredVariableError, UnknownPromptError
from prompts.models import PromptActivation, PromptVersion
from prompts.selectors import prompt_active_version_id, prompt_overview, prompt_rollback_target
from prompts.services import (
    NothingToRollBackError,
    prompt_default_activate,
    prompt_rollback,
    prompt_version_activate,
    prompt_version_create,
)

pytestmark = pytest.mark.django_db


def new_version(user, text: str = "v", activate: bool = False) -> PromptVersion:
    body = f"{text} {{{{ language }}}} {{{{ memory }}}}{{% for p in passages %}}[{{{{ p.label }}}}]{{% endfor %}}"
    return prompt_version_create(name="answer_system", body=body, note=text, created_by=user, activate=activate)


def test_new_version_records_author_note_and_is_not_active_until_activated(admin_user):
    version = new_version(admin_user, "first")
    assert (version.created_by, version.note, version.is_active) == (admin_user, "first", False)
    assert prompt_active_version_id(name="answer_system") is None


def test_version_using_an_undeclared_variable_is_refused_and_not_saved(admin_user):
    with pytest.raises(UndeclaredVariableError, match="question"):
        prompt_version_create(name="answer_system", body="{{ question }}", note="x", created_by=admin_user)
    assert not PromptVersion.objects.exists()


def test_version_with_a_syntax_error_is_refused_with_its_line(admin_user):
    with pytest.raises(PromptSyntaxError, match="on line 2"):
        prompt_version_create(name="summarize", body="ok\n{% if language %}", note="x", created_by=admin_user)
    assert not PromptVersion.objects.exists()


def test_version_for_an_unknown_prompt_is_refused(admin_user):
    with pytest.raises(UnknownPromptError):
        prompt_version_create(name="nope", body="hi", note="x", created_by=admin_user)


def test_activating_a_version_deactivates_the_previous_one_and_records_who(admin_user):
    first, second = new_version(admin_user, "first", activate=True), new_version(admin_user, "second")
    prompt_version_activate(version_id=second.pk, user=admin_user)
    assert list(PromptVersion.objects.filter(is_active=True).values_list("pk", flat=True)) == [second.pk]
    assert [a.version_id for a in PromptActivation.objects.order_by("id")] == [first.pk, second.pk]
    assert PromptActivation.objects.latest("id").activated_by == admin_user


def test_activating_the_active_version_again_changes_nothing(admin_user):
    version = new_version(admin_user, activate=True)
    prompt_version_activate(version_id=version.pk, user=admin_user)
    assert PromptActivation.objects.count() == 1


def test_rollback_returns_to_the_previously_active_version_not_the_previously_created_one(admin_user):
    good = new_version(admin_user, "good", activate=True)
    new_version(admin_user, "draft never activated")
    bad = new_version(admin_user, "bad", activate=True)
    assert prompt_rollback_target(name="answer_system") == (True, good)

    assert prompt_rollback(name="answer_system", user=admin_user) == good
    assert prompt_active_version_id(name="answer_system") == good.pk
    bad.refresh_from_db()
    assert not bad.is_active


def test_repeated_rollback_walks_back_to_the_shipped_default_then_refuses(admin_user):
    first = new_version(admin_user, "first", activate=True)
    new_version(admin_user, "second", activate=True)
    assert prompt_rollback(name="answer_system", user=admin_user) == first
    assert prompt_rollback(name="answer_system", user=admin_user) is None
    assert prompt_active_version_id(name="answer_system") is None
    assert prompt_rollback_target(name="answer_system") == (False, None)
    with pytest.raises(NothingToRollBackError, match="nothing to roll back"):
        prompt_rollback(name="answer_system", user=admin_user)


def test_switching_to_the_default_can_itself_be_rolled_back(admin_user):
    version = new_version(admin_user, activate=True)
    prompt_default_activate(name="answer_system", user=admin_user)
    assert prompt_active_version_id(name="answer_system") is None
    assert prompt_rollback(name="answer_system", user=admin_user) == version
    assert prompt_active_version_id(name="answer_system") == version.pk


def test_activations_of_one_prompt_leave_other_prompts_alone(admin_user):
    new_version(admin_user, activate=True)
    summary = prompt_version_create(name="summarize", body="{{ language }}", note="s", created_by=admin_user)
    prompt_version_activate(version_id=summary.pk, user=admin_user)
    assert PromptVersion.objects.filter(is_active=True).count() == 2
    overview = {row.name: row for row in prompt_overview()}
    assert overview["answer_extractive"].is_default
    assert overview["summarize"].active_version == summary
    assert overview["answer_system"].version_count == 1


def test_database_refuses_two_active_versions_of_one_prompt(admin_user):
    new_version(admin_user, activate=True)
    other = new_version(admin_user)
    with pytest.raises(IntegrityError), transaction.atomic():
        PromptVersion.objects.filter(pk=other.pk).update(is_active=True)
