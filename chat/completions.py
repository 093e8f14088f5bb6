"""The OpenAI chat protocol over our answers: a request's messages become a conversation, its last question is asked
through ``conversation_ask`` (the socket's path, with its limits), and the answer's events become completion chunks.

The prompt, retrieval (with the caller's access), model and usage are the normal pipeline's; a request's own system
messages are not used (the shipped prompt decides how answers cite their sources).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from chat import events, relay, services
from chat.models import Conversation, Message

# What a request may draw on, by model name (``GET /v1/models``).
MODELS = {"protostar": "Everything the caller may read in the knowledge base."}


@dataclass(frozen=True)
class Turn:
    role: str
    content: str


def completion_ask(*, user: AbstractBaseUser, turns: list[Turn]) -> services.AskResult:
    """Store the request's earlier turns as a new conversation and ask its last question (a ``user`` turn)."""
    *history, question = turns
    with transaction.atomic():
        conversation = Conversation.objects.create(owner=user, title=services.conversation_title(question.content))
        Message.objects.bulk_create(
            [
                Message(
                    conversation=conversation,
                    role=Message.Role.USER if turn.role == "user" else Message.Role.ASSISTANT,
                    content=turn.content,
                    status=Message.Status.COMPLETE,
                )
                for turn in history
                if turn.role in ("user", "assistant") and turn.content.strip()
            ]
        )
        return services.conversation_ask(user=user, content=question.content, conversation_id=conversation.pk)


@dataclass
class Piece:
    """What an answer event means to an OpenAI client: text to append, or the end (with sources and usage)."""

    text: str = ""
    finished: bool = False
    finish_reason: str = "stop"
    sources: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=dict)
    error: dict[str, str] | None = None


async def answer_pieces(message_id: int, reader: Any) -> AsyncIterator[Piece]:
    """The answer as text pieces and one final piece. A ``reset`` (a re-run after a worker died) starts the answer
    again: text already given out cannot be taken back, so only what goes beyond it is passed on."""
    given, redo, sources = "", None, []
    async for event in relay.follow_events(message_id, 0, reader=reader):
        kind = event["type"]
        if kind == events.RESET:
            redo = ""
        elif kind == events.SOURCES:
            sources = event["items"]
        elif kind == events.TOKEN:
            if redo is None:
                given += event["text"]
                yield Piece(text=event["text"])
                continue
            redo += event["text"]
            if len(redo) > len(given):
                extra = redo[len(given) :]
                given, redo = redo, None
                yield Piece(text=extra)
        elif kind == events.END:
            usage = event["usage"]
            total = usage["prompt_tokens"] + usage["completion_tokens"]
            yield Piece(finished=True, sources=sources, usage={**usage, "total_tokens": total})
            return
        elif kind == events.ERROR:
            yield Piece(finished=True, sources=sources, error={"code": event["code"], "detail": event["detail"]})
            return
