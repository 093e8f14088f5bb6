"""The usage ledger written by finished answers, and the admin's usage page, quota editing and CSV export."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from chat import services
from chat.models import Conversation, Message
from chat.services import AnswerOutcome
from usage.models import QuotaLimit, UsageDay

pytestmark = pytest.mark.django_db


def streaming_answer(user, attempt: str) -> Message:
    conversation = Conversation.objects.create(owner=user, title="t")
    question = Message.objects.create(conversation=conversation, role="user", content="연차?", status="complete")
    return Message.objects.create(
        conversation=conversation, role="assistant", reply_to=question, status="streaming", attempt_id=attempt
    )


def test_a_finished_answer_is_billed_once_to_its_owner(django_user_model):
    owner = django_user_model.objects.create_user("민지", password="pw-123456")
    answer = streaming_answer(owner, "run-1")
    outcome = AnswerOutcome(status="complete", content="18일입니다.", prompt_tokens=812, completion_tokens=9)
    assert services.message_finish(message_id=answer.pk, attempt_id="run-1", outcome=outcome)
    # A stale run of the same job is fenced out and bills nothing.
    assert not services.message_finish(message_id=answer.pk, attempt_id="run-0", outcome=outcome)
    assert not services.message_finish(message_id=answer.pk, attempt_id="run-1", outcome=outcome)
    second = streaming_answer(owner, "run-2")
    failed = AnswerOutcome(status="failed", error_code="timeout", prompt_tokens=700)
    assert services.message_finish(message_id=second.pk, attempt_id="run-2", outcome=failed)

    row = UsageDay.objects.get(user=owner, day=timezone.localdate())
    assert (row.answers, row.prompt_tokens, row.completion_tokens) == (2, 1512, 9)
    assert row.total_tokens == 1521


@pytest.fixture
def ledger(django_user_model):
    today = timezone.localdate()
    mina = django_user_model.objects.create_user("민지", password="pw-123456")
    john = django_user_model.objects.create_user("john", password="pw-123456")
    for offset in range(5):
        UsageDay.objects.create(
            user=mina,
            day=today - timedelta(days=offset),
            answers=3 + offset,
            prompt_tokens=1000 * (offset + 1),
            completion_tokens=100,
            summary_prompt_tokens=50,
            summary_completion_tokens=10,
        )
    UsageDay.objects.create(user=john, day=today, answers=1, prompt_tokens=400, completion_tokens=40)
    UsageDay.objects.create(user=john, day=today - timedelta(days=90), answers=9, prompt_tokens=9000)
    return {"mina": mina, "john": john, "today": today}


def test_usage_page_shows_a_chart_per_day_and_totals_per_user(admin_client, ledger):
    response = admin_client.get(reverse("admin:usage_usageday_report"))
    assert response.status_code == 200
    html = response.content.decode()
    assert '<svg id="usage-chart"' in html and html.count('class="prompt"') >= 5
    assert "민지" in html and "john" in html
    # The last 30 days: mina's five days and john's one; john's old day is outside the range.
    assert "26</strong> answers" in html
    users = response.context["users"]
    assert [item["row"].label for item in users] == ["민지", "john"]
    assert users[0]["percent"] == 100.0 and 0 < users[1]["percent"] < 100
    one = admin_client.get(reverse("admin:usage_usageday_report"), {"user": ledger["john"].pk})
    assert sum(row.answers for row in one.context["days"]) == 1
    assert admin_client.get(reverse("admin:usage_usageday_changelist")).status_code == 302


def test_usage_csv_export_lists_every_user_day_in_the_range(admin_client, ledger):
    since = (ledger["today"] - timedelta(days=100)).isoformat()
    response = admin_client.get(reverse("admin:usage_usageday_csv"), {"since": since})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["day", "user", "answers"]
    assert len(rows) == 1 + 7
    mina_today = next(r for r in rows[1:] if r[1] == "민지" and r[0] == ledger["today"].isoformat())
    assert mina_today[2:] == ["3", "1000", "100", "50", "10", "1160"]


def test_usage_pages_need_the_view_permission(client, django_user_model, ledger):
    staff = django_user_model.objects.create_user("editor", password="pw-123456", is_staff=True)
    client.force_login(staff)
    assert client.get(reverse("admin:usage_usageday_report")).status_code == 403
    assert client.get(reverse("admin:usage_usageday_csv")).status_code == 403


def test_quota_limits_are_edited_in_the_admin_for_users_and_groups(admin_client, ledger):
    team = Group.objects.create(name="영업팀")
    url = reverse("admin:usage_quotalimit_add")
    response = admin_client.post(url, {"group": team.pk, "period": "month", "max_tokens": "500000", "note": "팀 예산"})
    assert response.status_code == 302
    limit = QuotaLimit.objects.get(group=team)
    assert (limit.period, limit.max_tokens, limit.max_answers) == ("month", 500000, None)
    both = admin_client.post(url, {"user": ledger["john"].pk, "group": team.pk, "period": "day", "max_answers": "5"})
    assert both.status_code == 200 and QuotaLimit.objects.count() == 1  # a user or a group, not both
    empty = admin_client.post(url, {"user": ledger["john"].pk, "period": "day"})
    assert empty.status_code == 200 and QuotaLimit.objects.count() == 1  # a limit must limit something
