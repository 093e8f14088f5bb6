"""The summarizer seam: a small Protocol and its two implementations, chosen by ``SUMMARIZER_BACKEND``.

``ExtractiveSummarizer`` needs no model (the embedded default); ``LLMSummarizer`` goes through the same chat model
seam as answers (``get_chat_model().complete``) with the ``summarize`` prompt from the prompts app.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from protostar.tokens import count_tokens, truncate_to_tokens


@dataclass(frozen=True)
class Turn:
    role: str  # "user" or "assistant"
    content: str


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


class ExtractiveSummarizer:
    """Keeps the sentences with names, numbers, dates, decisions and open questions (Korean and English), and only
    the strongest of each answer. Offline, deterministic, free: it spends no model tokens."""

    name = "extractive"

    def summarize(self, *, previous: str, turns: Sequence[Turn], language: str, max_tokens: int) -> SummaryResult:
        from summaries.extractive import summarize

        return SummaryResult(text=summarize(previous, [(t.role, t.content) for t in turns], max_tokens))


class LLMSummarizer:
    """Rolling summary written by the configured chat model with the admin-editable ``summarize`` prompt."""

    def __init__(self) -> None:
        from protostar.llm.registry import get_chat_model

        self.model = get_chat_model()
        self.name = f"llm:{getattr(self.model, 'model_name', '') or 'unknown'}"

    def summarize(self, *, previous: str, turns: Sequence[Turn], language: str, max_tokens: int) -> SummaryResult:
        from prompts.render import render_prompt
        from protostar.llm.base import ChatRequest, LLMError

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


def bound_summary(text: str, max_tokens: int) -> str:
    """``text`` within ``max_tokens``; a cut ends at the last whole line when there is one (bullets stay whole)."""
    cut = truncate_to_tokens(text, max_tokens)
    if cut == text:
        return text
    head, newline, _ = cut.rpartition("\n")
    return head if newline and head.strip() else cut
