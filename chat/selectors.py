"""Reads for the chat app. Everything a user can name by id is looked up through their own conversations."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from chat.models import Conversation, Message

# What a source the reader may no longer open shows instead of its title, snippet and link.
HIDDEN_SOURCE_TITLE = "a document you can no longer open"


def _hidden_source(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "label": item.get("label", ""),
        "hidden": True,
        "chunk_id": None,
        "document_id": None,
        "title": HIDDEN_SOURCE_TITLE,
        "page": None,
        "snippet": "",
        "score": 0,
    }


def sources_for_reader(*, source_lists: list[list[dict[str, Any]]], user: Any) -> list[list[dict[str, Any]]]:
    """Stored sources as ``user`` may see them now: a source whose document they can no longer read (restricted
    since, or deleted) keeps its label, so the answer's citations still line up, and loses everything else.
    One query for any number of lists."""
    from knowledge.selectors import visible_document_ids

    wanted = {item.get("document_id") for items in source_lists for item in items}
    visible = visible_document_ids(user=user, document_ids=wanted)
    return [
        [item if item.get("document_id") in visible else _hidden_source(item) for item in items]
        for items in source_lists
    ]


def hidden_answer_ids(*, conversation_id: int, user: Any) -> set[int]:
    """The conversation's answers that cite a document ``user`` can no longer read (their text quotes it): left out
    of the prompts, the query rewriter's history and the memory."""
    from knowledge.selectors import visible_document_ids

    answers = list(
        Message.objects.filter(conversation_id=conversation_id, role=Message.Role.ASSISTANT)
        .exclude(sources=[])
        .values_list("pk", "sources")
    )
    cited = {pk: {item.get("document_id") for item in sources or []} - {None} for pk, sources in answers}
    visible = visible_document_ids(user=user, document_ids=set().union(*cited.values()) if cited else set())
    return {pk for pk, documents in cited.items() if documents - visible}


def conversation_get_for_user(*, conversation_id: int, user: AbstractBaseUser) -> Conversation | None:
    return Conversation.objects.filter(pk=conversation_id, owner=user).first()


def assistant_message_get_for_user(*, message_id: int, user: AbstractBaseUser) -> Message | None:
    """An assistant message the user may stop or resume; ``None`` for other users' messages as for missing ones."""
    return (
        Message.objects.select_related("conversation")
        .filter(pk=message_id, role=Message.Role.ASSISTANT, conversation__owner=user)
        .first()
    )


def message_get(*, message_id: int) -> Message | None:
    related = ("conversation", "conversation__owner", "reply_to")
    return Message.objects.select_related(*related).filter(pk=message_id).first()


def message_get_by_client_id(*, user: AbstractBaseUser, conversation_id: int | None, client_id: str) -> Message | None:
    """The user message an earlier ask with this ``client_id`` created (for idempotent retries)."""
    if not client_id:
        return None
    messages = Message.objects.select_related("reply").filter(
        role=Message.Role.USER, client_id=client_id, conversation__owner=user
    )
    if conversation_id is not None:
        messages = messages.filter(conversation_id=conversation_id)
    return messages.order_by("-id").first()


def recent_turns(*, message: Message, limit: int) -> list[Message]:
    """The last ``limit`` finished messages before ``message``'s question, oldest first (the chat's short memory);
    answers citing documents the owner can no longer read are left out."""
    question_id = message.reply_to_id or message.pk
    hidden = hidden_answer_ids(conversation_id=message.conversation_id, user=message.conversation.owner)
    turns = (
        Message.objects.filter(conversation_id=message.conversation_id, pk__lt=question_id)
        .exclude(pk__in=hidden)
        .exclude(content="")
        .filter(status__in=[Message.Status.COMPLETE, Message.Status.CANCELLED])
        .order_by("-id")[:limit]
    )
    return list(reversed(turns))


def conversations_for_user(*, user: AbstractBaseUser, limit: int = 200) -> list[Conversation]:
    """The user's conversations for the sidebar, most recently active first."""
    return list(Conversation.objects.filter(owner=user).order_by("-updated_at", "-id").only("id", "title")[:limit])


def conversation_messages(*, conversation: Conversation) -> list[Message]:
    """Every message of a conversation in the order they were written (questions before their answers)."""
    return list(Message.objects.filter(conversation=conversation).order_by("id"))


def message_get_for_user(*, message_id: int, user: AbstractBaseUser) -> Message | None:
    """A message (question or answer) of one of the user's conversations; ``None`` for others' as for missing ones."""
    return Message.objects.filter(pk=message_id, conversation__owner=user).first()


def conversations_page(*, user: AbstractBaseUser):
    """All the user's conversations, most recently active first (for paginated listings)."""
    return Conversation.objects.filter(owner=user).order_by("-updated_at", "-id")
