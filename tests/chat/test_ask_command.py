"""``manage.py ask`` goes through the same service, queue, worker and answer stream as the browser."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from chat.models import Message
from tests.conftest import ROOT
from tests.conftest import worker_database_url as database_url

pytestmark = pytest.mark.django_db(transaction=True)
REPLY = "정규직 직원은 연간 최대 18일의 유급휴가를 받습니다 [S1]."


def run_ask(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": database_url()}
    command = [sys.executable, "manage.py", "ask", *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_ask_json_prints_one_event_per_line_and_continues_a_conversation(
    django_user_model, knowledge_base, chat_worker, llm
):
    django_user_model.objects.create_user("cli-user", password="pw-123456")
    llm.script(reply=REPLY, tokens_per_second=200)
    first = run_ask("연간 휴가는 며칠?", "--user", "cli-user", "--json")
    assert first.returncode == 0, first.stderr
    lines = [json.loads(line) for line in first.stdout.splitlines()]
    assert [e["type"] for e in lines[:2]] == ["accepted", "sources"] and lines[-1]["type"] == "end"
    assert "".join(e["text"] for e in lines if e["type"] == "token") == REPLY
    conversation = lines[0]["conversation"]

    second = run_ask("And remote work?", "--user", "cli-user", "--conversation", str(conversation))
    assert second.returncode == 0, second.stderr
    assert second.stdout.startswith(REPLY) and "[S1] Employee Handbook, p. " in second.stdout
    answers = Message.objects.filter(conversation_id=conversation, role="assistant", status="complete")
    assert answers.count() == 2
    # The second question was asked with the first exchange as context.
    assert {"role": "assistant", "content": REPLY} in llm.requests[-1]["messages"]


def test_ask_in_someone_elses_conversation_is_refused(django_user_model, knowledge_base):
    owner = django_user_model.objects.create_user("cli-owner", password="pw-123456")
    django_user_model.objects.create_user("cli-other", password="pw-123456")
    conversation = owner.conversations.create(title="mine")
    result = run_ask("hello", "--user", "cli-other", "--conversation", str(conversation.pk))
    assert result.returncode != 0 and "does not exist" in result.stderr
    assert not conversation.messages.exists()
