"""The summarizer seam: a small Protocol, its getter and the offline implementation (``SUMMARIZER_BACKEND``).

``ExtractiveSummarizer`` needs no model (the embedded default). The model-written summary composes the chat model
with the ``summarize`` prompt, so it lives with the app that composes them: ``chat.memory.LLMSummarizer``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from protostar.seams import seam
from protostar.tokens import truncate_to_tokens
from summaries.extractive import summarize


@dataclass(frozen=True)
class Turn:
    role: str  # "user" or "assistant"
    content: str
    message_id: int = 0
    # An answer that only quotes the documents (the offline answerer's): it says nothing retrieval cannot find again.
    quoted: bool = False
    # The documents an answer cites: a memory version records those it folded in, to be set aside when the owner
    # loses one of them.
    document_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class SummaryResult:
    text: str
    # Tokens spent producing the summary, counted with our tokenizer so they compare with the prompt figures.
    prompt_tokens: int = 0
    completion_tokens: int = 0


@runtime_checkable
class Summarizer(Protocol):
    name: str

    def summarize(self, *, previous: str, turns: Sequence[Turn], language: str, max_tokens: int) -> SummaryResult:
        """The complete new summary: ``previous`` updated with ``turns`` (oldest first), within ``max_tokens``.
        Raises on failure (``LLMError`` for model faults); the caller then keeps the previous summary."""
        ...


get_summarizer = seam("SUMMARIZER_BACKEND", Summarizer)


class ExtractiveSummarizer:
    """Keeps the sentences with names, numbers, dates, decisions and open questions (Korean and English), and only
    the strongest of each answer. Offline, deterministic, free: it spends no model tokens."""

    name = "extractive"

    def summarize(self, *, previous: str, turns: Sequence[Turn], language: str, max_tokens: int) -> SummaryResult:
        # A quoted answer stays in the sequence (its question was answered) but contributes no facts of its own.
        pairs = [(t.role, "" if t.quoted else t.content) for t in turns]
        return SummaryResult(text=summarize(previous, pairs, max_tokens))


def bound_summary(text: str, max_tokens: int) -> str:
    """``text`` within ``max_tokens``; a cut ends at the last whole line when there is one (bullets stay whole)."""
    cut = truncate_to_tokens(text, max_tokens)
    if cut == text:
        return text
    head, newline, _ = cut.rpartition("\n")
    return head if newline and head.strip() else cut
