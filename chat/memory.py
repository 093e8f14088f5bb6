"""Chat's side of conversation memory: its messages as the turns the summaries app folds, and the summary written
by the chat model with the ``summarize`` prompt (``SUMMARIZER_BACKEND = "chat.memory.LLMSummarizer"``).

The summaries app sits below chat and never imports it: it reads turns through its ``TurnSource`` seam
(``MEMORY_TURN_SOURCE``), which ``MessageTurns`` implements here.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from chat import selectors
from chat.extractive import EXTRACTIVE_MODEL_NAME
from chat.models import Conversation, Message
from knowledge.selectors import visible_document_ids
from prompts.render import render_prompt
from protostar.llm.base import ChatRequest, LLMError, get_chat_model
from protostar.tokens import count_tokens
from summaries.summarizers import SummaryResult, Turn, bound_summary


def turn_from_message(message: Message) -> Turn:
    return Turn(
        role=message.role,
        content=message.content,
        message_id=message.pk,
        quoted=message.model_name == EXTRACTIVE_MODEL_NAME,
        document_ids=tuple(sorted({item["document_id"] for item in message.sources or [] if item.get("document_id")})),
    )


class MessageTurns:
    """The conversation's finished messages, up to the first answer still being written (and its question), without
    the answers citing a document the owner can no longer read; the owner's access decides what memory may hold."""

    def settled_turns(self, *, conversation_id: int, after_id: int) -> list[Turn]:
        owner = _owner(conversation_id)
        if owner is None:
            return []
        hidden = selectors.hidden_answer_ids(conversation_id=conversation_id, user=owner)
        boundary = selectors.settled_boundary(conversation_id=conversation_id, after_id=after_id)
        messages = selectors.turns_between(
            conversation_id=conversation_id, after_id=after_id, before_id=boundary, hidden=hidden
        )
        return [turn_from_message(message) for message in messages]

    def readable_document_ids(self, *, conversation_id: int, document_ids: Collection[int]) -> set[int]:
        owner = _owner(conversation_id)
        if owner is None or not document_ids:
            return set()
        return visible_document_ids(user=owner, document_ids=document_ids)


def _owner(conversation_id: int):
    conversation = Conversation.objects.filter(pk=conversation_id).select_related("owner").first()
    return conversation.owner if conversation is not None else None


class LLMSummarizer:
    """Rolling summary written by the configured chat model with the admin-editable ``summarize`` prompt."""

    def __init__(self) -> None:
        self.model = get_chat_model()
        self.name = f"llm:{getattr(self.model, 'model_name', '') or 'unknown'}"

    def summarize(self, *, previous: str, turns: Sequence[Turn], language: str, max_tokens: int) -> SummaryResult:
        prompt = render_prompt(
            "summarize",
            previous_summary=previous,
            turns=[{"role": turn.role, "content": turn.content} for turn in turns],
            language=language,
        )
        request = ChatRequest(messages=[{"role": "user", "content": prompt}], language=language)
        text, _usage = self.model.complete(request)
        text = text.strip()
        if not text:
            raise LLMError("The language model returned an empty summary.", code="bad_response")
        return SummaryResult(
            text=bound_summary(text, max_tokens),
            prompt_tokens=count_tokens(prompt),
            completion_tokens=count_tokens(text),
        )
