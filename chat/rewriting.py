"""What the chat job searches for: the question, made standalone when it is a follow-up.

"And the second one?" finds nothing on its own. The rewriter seam (``CHAT_QUERY_REWRITER``) has two implementations:

- ``RecentQuestionRewriter`` (offline default): the previous question and the new one, searched together. The
  embedding lists then see the subject of the conversation, and the keyword list still sees the new terms.
- ``LLMQueryRewriter`` (default when ``LLM_BASE_URL`` is set): the configured chat model rewrites the follow-up with
  the ``condense_question`` prompt; when the model fails or answers with nothing usable, the offline rewrite is used.

The first question of a conversation is searched as typed, with no model call.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from prompts.render import render_prompt
from protostar.llm.base import ChatRequest, LLMError, get_chat_model
from protostar.seams import seam
from protostar.text import detect_language
from protostar.tokens import truncate_to_tokens

logger = logging.getLogger(__name__)

# Earlier answers are context for the rewrite, not material to search: a few sentences of each suffice.
HISTORY_ANSWER_TOKENS = 120
# The subject of a follow-up is in the first lines of the previous question; a pasted document is not.
PREVIOUS_QUESTION_CHARS = 500


@dataclass(frozen=True)
class Turn:
    role: str  # "user" or "assistant"
    content: str


class QueryRewriter(Protocol):
    name: str

    def rewrite(self, *, question: str, history: Sequence[Turn]) -> str:
        """The search query for ``question`` given the earlier turns (oldest first); never raises for model faults."""
        ...


get_query_rewriter = seam("CHAT_QUERY_REWRITER", QueryRewriter)


def previous_question(history: Sequence[Turn]) -> str:
    return next((turn.content for turn in reversed(history) if turn.role == "user"), "")


class RecentQuestionRewriter:
    name = "recent-question"

    def rewrite(self, *, question: str, history: Sequence[Turn]) -> str:
        earlier = previous_question(history)[:PREVIOUS_QUESTION_CHARS]
        # The new question first: a search cut to its length limit must keep what was asked now.
        return f"{question}\n{earlier}" if earlier else question


class LLMQueryRewriter:
    name = "llm"

    def __init__(self) -> None:
        self.model = get_chat_model()
        self.fallback = RecentQuestionRewriter()

    def rewrite(self, *, question: str, history: Sequence[Turn]) -> str:
        if not history:
            return question
        prompt = render_prompt(
            "condense_question",
            history=[{"role": turn.role, "content": _shortened(turn)} for turn in history],
            question=question,
        )
        request = ChatRequest(messages=[{"role": "user", "content": prompt}], language=detect_language(question))
        try:
            text, _usage = self.model.complete(request)
        except LLMError as exc:
            logger.warning("rewriting a follow-up question failed (%s); searching with the previous question", exc)
            return self.fallback.rewrite(question=question, history=history)
        rewritten = " ".join(text.split()).strip("\"'“”")
        # A usable query is a line, not an essay: anything else means the model answered instead of rewriting.
        if not rewritten or len(rewritten) > max(400, 4 * len(question)):
            return self.fallback.rewrite(question=question, history=history)
        return rewritten


def _shortened(turn: Turn) -> str:
    return turn.content if turn.role == "user" else truncate_to_tokens(turn.content, HISTORY_ANSWER_TOKENS)
