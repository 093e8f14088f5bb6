"""render_prompt against the real database: the active version, context checks, and other processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from prompts.errors import PromptContextError, UnknownPromptError
from prompts.render import render_prompt
from prompts.services import prompt_default_activate, prompt_rollback, prompt_version_activate, prompt_version_create
from prompts.shipped import shipped_prompt
from tests import conftest

V2_BODY = "V2 summary in {{ language }}: {{ previous_summary }}{% for t in turns %} [{{ t.role }}]{% endfor %}"


def sample(name: str, language: str = "en") -> dict:
    return shipped_prompt(name).sample_context(language)


@pytest.mark.django_db
def test_without_versions_the_shipped_default_renders():
    text = render_prompt("summarize", **sample("summarize", "ko"))
    assert text.startswith("You maintain the memory of a conversation")
    assert "미사용 휴가를 이월할 수 있나요?" in text


@pytest.mark.django_db
def test_missing_variable_raises_an_error_naming_prompt_and_variable():
    context = sample("answer_system")
    del context["memory"]
    with pytest.raises(PromptContextError) as caught:
        render_prompt("answer_system", **context)
    assert caught.value.missing == ["memory"]
    assert str(caught.value) == "Prompt 'answer_system': missing variable(s) memory."


@pytest.mark.django_db
def test_unknown_variable_raises_an_error_naming_it():
    with pytest.raises(PromptContextError, match=r"unknown variable\(s\) question") as caught:
        render_prompt("answer_system", **sample("answer_system"), question="hi")
    assert caught.value.unknown == ["question"]


def test_unknown_prompt_raises_listing_the_shipped_ones():
    with pytest.raises(UnknownPromptError, match="answer_extractive, answer_system, condense_question, summarize"):
        render_prompt("answer_sytsem", language="en")


@pytest.mark.django_db
def test_a_prompt_variable_called_name_does_not_clash_with_the_prompt_name():
    with pytest.raises(PromptContextError, match=r"unknown variable\(s\) name"):
        render_prompt("summarize", **sample("summarize"), name="x")


@pytest.mark.django_db
def test_activated_version_is_rendered_immediately_and_rollback_restores_the_default(admin_user):
    context = sample("summarize")
    version = prompt_version_create(name="summarize", body=V2_BODY, note="shorter", created_by=admin_user)
    assert render_prompt("summarize", **context).startswith("You maintain")  # saved, not active

    prompt_version_activate(version_id=version.pk, user=admin_user)
    assert render_prompt("summarize", **context) == (
        "V2 summary in en: - User: Mina Park, HR team. Planning 10 days of leave in May 2024.\n"
        "- Open question: can unused leave carry over? [user] [assistant]"
    )

    prompt_rollback(name="summarize", user=admin_user)
    assert render_prompt("summarize", **context).startswith("You maintain")


@pytest.mark.django_db
def test_switching_back_to_the_default_is_picked_up_immediately(admin_user):
    prompt_version_create(name="summarize", body=V2_BODY, note="v2", created_by=admin_user, activate=True)
    assert render_prompt("summarize", **sample("summarize")).startswith("V2")
    prompt_default_activate(name="summarize", user=admin_user)
    assert render_prompt("summarize", **sample("summarize")).startswith("You maintain")


@pytest.mark.django_db
def test_a_warm_render_costs_one_database_query(admin_user, django_assert_num_queries):
    context = sample("summarize")
    render_prompt("summarize", **context)
    with django_assert_num_queries(1):
        render_prompt("summarize", **context)
    prompt_version_create(name="summarize", body=V2_BODY, note="v2", created_by=admin_user, activate=True)
    render_prompt("summarize", **context)
    with django_assert_num_queries(1):
        assert render_prompt("summarize", **context).startswith("V2")


# Reads one line per request from stdin and answers with the rendered prompt as a JSON line: a long-lived process
# whose template cache is warm, like a worker.
RENDER_LOOP = """
import json, sys
from prompts.render import render_prompt
from prompts.shipped import shipped_prompt
context = shipped_prompt("summarize").sample_context("ko")
for line in sys.stdin:
    print("RENDERED", json.dumps(render_prompt("summarize", **context)), flush=True)
"""


@pytest.mark.django_db(transaction=True)
def test_another_running_process_picks_up_an_activation_without_restart(admin_user):
    env = {**os.environ, "DATABASE_URL": conftest.worker_database_url()}
    process = subprocess.Popen(
        [sys.executable, "manage.py", "shell", "--verbosity", "0", "-c", RENDER_LOOP],
        cwd=conftest.ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert _ask(process).startswith("You maintain")
        version = prompt_version_create(name="summarize", body=V2_BODY, note="v2", created_by=admin_user)
        prompt_version_activate(version_id=version.pk, user=admin_user)
        assert _ask(process).startswith("V2 summary in ko: - 사용자: 박민아")
        prompt_rollback(name="summarize", user=admin_user)
        assert _ask(process).startswith("You maintain")
    finally:
        process.stdin.close()
        process.wait(30)
    assert process.returncode == 0, process.stderr.read()


def _ask(process: subprocess.Popen) -> str:
    process.stdin.write("render\n")
    process.stdin.flush()
    while True:
        line = process.stdout.readline()
        assert line, f"render process died: {process.stderr.read()[-2000:]}"
        if line.startswith("RENDERED "):  # skip anything else the shell prints
            return json.loads(line.removeprefix("RENDERED "))


@pytest.mark.django_db
def test_preload_compiles_every_prompts_active_template(staff_user):
    from prompts.render import clear_caches, default_template, preload_templates, version_template
    from prompts.shipped import shipped_prompts

    body = shipped_prompt("summarize").body
    prompt_version_create(name="summarize", body=body, note="same words", created_by=staff_user, activate=True)
    clear_caches()  # checking the new version compiled it
    preload_templates()
    assert version_template.cache_info().currsize == 1
    assert default_template.cache_info().currsize == len(shipped_prompts()) - 1
