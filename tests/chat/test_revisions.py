"""Regenerate and edit: a new attempt keeps the earlier one (off the path, still stored), an edited question takes
everything after it off the path, and history, context and memory read only the path."""

from __future__ import annotations

import pytest
from django.utils import translation

from chat import revisions, selectors
from chat.answering import answer_message
from chat.models import Conversation, Message
from chat.services import ChatError, conversation_ask
from summaries.models import ConversationSummary

pytestmark = pytest.mark.django_db(transaction=True)
LEAVE = [("휴가 규정", "정규직 직원은 매월 1.5일의 유급휴가가 발생하며 연간 최대 18일까지 적립됩니다.")]


@pytest.fixture
def asker(django_user_model):
    from tests.knowledge.factories import ready_document

    ready_document(title="Handbook", chunks=LEAVE)
    return django_user_model.objects.create_user("reviser", password="pw-123456")


def answered(user, content: str, conversation_id: int | None = None):
    result = conversation_ask(user=user, content=content, conversation_id=conversation_id)
    assert answer_message(message_id=result.message_id) == Message.Status.COMPLETE
    return result


def test_regenerate_adds_an_attempt_and_keeps_the_first_browsable(asker):
    first = answered(asker, "연차는 며칠인가요?")

    again = revisions.answer_regenerate(user=asker, message_id=first.message_id, client_id="r-1")
    assert again.created and again.user_message_id == first.user_message_id and again.message_id != first.message_id
    assert answer_message(message_id=again.message_id) == Message.Status.COMPLETE

    old, new = Message.objects.get(pk=first.message_id), Message.objects.get(pk=again.message_id)
    assert old.superseded and old.content and not new.superseded
    assert [m.pk for m in Message.objects.get(pk=first.user_message_id).replies.order_by("id")] == [old.pk, new.pk]
    assert [m.pk for m in selectors.conversation_path(conversation=old.conversation)] == [first.user_message_id, new.pk]
    # A retried request with the same client_id gets the same attempt back.
    retried = revisions.answer_regenerate(user=asker, message_id=first.message_id, client_id="r-1")
    assert (retried.message_id, retried.created) == (again.message_id, False)


def test_only_the_latest_finished_answer_can_be_regenerated(asker):
    first = answered(asker, "연차는 며칠인가요?")
    answered(asker, "이월되나요?", conversation_id=first.conversation_id)

    with pytest.raises(ChatError) as refused:
        revisions.answer_regenerate(user=asker, message_id=first.message_id)
    assert refused.value.code == "invalid"

    pending = conversation_ask(user=asker, content="How many days?", conversation_id=first.conversation_id)
    with pytest.raises(ChatError) as busy:
        revisions.answer_regenerate(user=asker, message_id=pending.message_id)
    assert busy.value.code == "busy"


def test_someone_elses_answer_or_question_is_not_found(asker, django_user_model):
    first = answered(asker, "연차는 며칠인가요?")
    stranger = django_user_model.objects.create_user("stranger", password="pw-123456")

    with pytest.raises(ChatError) as regenerate:
        revisions.answer_regenerate(user=stranger, message_id=first.message_id)
    with pytest.raises(ChatError) as edit:
        revisions.question_edit(user=stranger, message_id=first.user_message_id, content="탈취")
    assert regenerate.value.code == edit.value.code == "not_found"
    assert Message.objects.count() == 2


def test_edit_asks_again_from_that_question_and_the_old_branch_leaves_the_path(asker):
    first = answered(asker, "연차는 며칠인가요?")
    second = answered(asker, "이월되나요?", conversation_id=first.conversation_id)
    third = answered(asker, "반차도 있나요?", conversation_id=first.conversation_id)
    conversation = Conversation.objects.get(pk=first.conversation_id)
    ConversationSummary.objects.create(
        conversation=conversation,
        version=1,
        text="U: old",
        covers_from_message_id=first.user_message_id,
        covers_to_message_id=first.message_id,
        message_count=2,
        token_count=3,
    )
    ConversationSummary.objects.create(
        conversation=conversation,
        version=2,
        text="U: old branch",
        covers_from_message_id=second.user_message_id,
        covers_to_message_id=third.message_id,
        message_count=6,
        token_count=3,
    )

    edited = revisions.question_edit(user=asker, message_id=second.user_message_id, content="Can leave carry over?")
    assert answer_message(message_id=edited.message_id) == Message.Status.COMPLETE

    path = selectors.conversation_path(conversation=conversation)
    assert [m.pk for m in path] == [first.user_message_id, first.message_id, edited.user_message_id, edited.message_id]
    assert path[2].content == "Can leave carry over?"
    gone = Message.objects.filter(pk__in=[second.user_message_id, second.message_id, third.user_message_id])
    assert all(message.superseded for message in gone)
    # The memory version that read the old branch is dropped; the one before it stays.
    assert list(ConversationSummary.objects.filter(conversation=conversation).values_list("version", flat=True)) == [1]
    # The new answer's short memory is the first exchange only.
    answer = Message.objects.get(pk=edited.message_id)
    assert [m.pk for m in selectors.recent_turns(message=answer, limit=10)] == [first.user_message_id, first.message_id]


def test_an_edited_question_cannot_be_edited_again_and_errors_speak_korean(asker):
    first = answered(asker, "연차는 며칠인가요?")
    revisions.question_edit(user=asker, message_id=first.user_message_id, content="연차 일수를 알려 주세요.")

    with translation.override("ko"), pytest.raises(ChatError) as refused:
        revisions.question_edit(user=asker, message_id=first.user_message_id, content="다시")
    assert refused.value.code == "invalid" and refused.value.detail == "이미 수정된 질문입니다."
