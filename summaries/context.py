"""The token-budgeted prompt of an answer: system prompt + retrieved passages + memory summary + recent turns.

Every part has its own budget (``CONTEXT_BUDGET_PASSAGES``, ``_MEMORY``, ``_RECENT``) and the whole prompt stays
within ``CONTEXT_BUDGET_TOTAL``, counted with the real tokenizer. Parts are filled in order of what an answer
needs most: the question, the passages it must be grounded in, the memory, then the newest turns verbatim. Long
texts are cut with ``truncate_to_tokens`` (never inside a character); passages that do not fit are dropped from
the lowest-ranked up, so the labels the answer cites stay those of the ``sources`` event.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from chat.models import Message
from protostar.llm.base import ChatRequest, Passage
from protostar.tokens import count_tokens, detect_language, truncate_to_tokens
from summaries import selectors


@dataclass
class BuiltContext:
    request: ChatRequest
    context_tokens: int  # what this prompt costs
    full_history_tokens: int  # what the same prompt with every earlier message instead of the memory would cost
    memory_version: int | None
    parts: dict[str, int] = field(default_factory=dict)


def build_context(*, message: Message, hits: Sequence[Any], focus: str = "") -> BuiltContext:
    """The request for assistant ``message`` (whose ``reply_to`` is the question) with its token figures."""
    full_question = message.reply_to.content
    language = detect_language(full_question)
    total = settings.CONTEXT_BUDGET_TOTAL
    render_system = system_renderer(language)
    base = count_tokens(render_system([], ""))
    question = truncate_to_tokens(full_question, max(0, total - base))
    room = total - base - count_tokens(question)
    passages = fit_passages(hits, min(settings.CONTEXT_BUDGET_PASSAGES, room), render_system, base)
    plain_system = render_system(passages, "")
    room = total - count_tokens(plain_system) - count_tokens(question)
    from chat.selectors import hidden_answer_ids

    owner = message.conversation.owner
    # Only memory and turns that quote no document the owner has lost access to reach the prompt.
    summary, stale = selectors.summary_for_owner(conversation_id=message.conversation_id, user=owner)
    if stale:
        _request_rebuild(message.conversation_id)
    hidden = hidden_answer_ids(conversation_id=message.conversation_id, user=owner)
    system = plain_system
    if summary is not None and room > 0:
        memory = truncate_to_tokens(summary.text, min(settings.CONTEXT_BUDGET_MEMORY, room))
        system = render_system(passages, memory)
    room = total - count_tokens(system) - count_tokens(question)
    after_id = summary.covers_to_message_id if summary else 0
    recent = recent_window(message, after_id=after_id, budget=min(settings.CONTEXT_BUDGET_RECENT, room), hidden=hidden)
    chat = [{"role": "system", "content": system}, *recent, {"role": "user", "content": question}]
    parts = {
        "system": base,
        "passages": count_tokens(plain_system) - base,
        "memory": count_tokens(system) - count_tokens(plain_system),
        "recent": sum(count_tokens(turn["content"]) for turn in recent),
        "question": count_tokens(question),
    }
    return BuiltContext(
        request=ChatRequest(messages=chat, passages=passages, question=question, language=language, focus=focus),
        context_tokens=sum(count_tokens(m["content"]) for m in chat),
        full_history_tokens=full_history_tokens(message, plain_system, full_question, hidden=hidden),
        memory_version=summary.version if summary is not None and system != plain_system else None,
        parts=parts,
    )


SystemRenderer = Callable[[Sequence[Passage], str], str]


def system_renderer(language: str) -> SystemRenderer:
    """Renders the answer system prompt with given passages and memory. The active version is looked up once: a
    build renders it several times to fit the budgets, and all of them must use the same version."""
    from prompts.render import prompt_renderer

    render = prompt_renderer("answer_system")

    def render_system(passages: Sequence[Passage], memory: str) -> str:
        rows = [
            {"label": p.label, "title": p.title, "page": p.page, "section": p.section, "text": p.text} for p in passages
        ]
        return render(passages=rows, memory=memory, language=language)

    return render_system


def fit_passages(hits: Sequence[Any], budget: int, render_system: SystemRenderer, base_tokens: int) -> list[Passage]:
    """The best-ranked passages that fit ``budget`` (the first one cut to fit rather than dropped)."""
    passages = [
        Passage(label=f"S{i}", title=hit.title, text=hit.text, page=hit.page_start, section=hit.section)
        for i, hit in enumerate(hits, start=1)
    ]
    chosen: list[Passage] = []
    used = 0
    for passage in passages:
        # The text plus its <source …> wrapper; the exact count of the rendered prompt confirms the estimate below.
        size = count_tokens(passage.text) + _wrapper_tokens(passage)
        if used + size > budget:
            if not chosen and budget > _wrapper_tokens(passage):
                cut = truncate_to_tokens(passage.text, budget - _wrapper_tokens(passage))
                chosen.append(Passage(passage.label, passage.title, cut, passage.page, passage.section))
            break
        chosen.append(passage)
        used += size
    while chosen and count_tokens(render_system(chosen, "")) - base_tokens > budget:
        last = chosen.pop()
        if not chosen:  # the wrapper estimate was short: cut the single passage a little more
            text = truncate_to_tokens(last.text, max(0, count_tokens(last.text) - 16))
            if text:
                chosen.append(Passage(last.label, last.title, text, last.page, last.section))
    return chosen


def _wrapper_tokens(passage: Passage) -> int:
    header = f'<source id="{passage.label}" title="{passage.title}" page="{passage.page}" section="{passage.section}">'
    return count_tokens(header) + 4


def recent_window(
    message: Message, *, after_id: int, budget: int, hidden: Collection[int] = ()
) -> list[dict[str, str]]:
    """The turns after the memory's range and before the question, newest first until ``budget``; oldest first.

    Holds whole exchanges: it stops at the first turn that does not fit (an older turn without the one after it
    would read out of context), and an answer whose question did not fit is left out too, so the window never opens
    in the middle of an exchange. Only the newest turn is cut to fit when it alone is too long.
    """
    question_id = message.reply_to_id or message.pk
    turns = selectors.turns_between(
        conversation_id=message.conversation_id, after_id=after_id, before_id=question_id, hidden=hidden
    )
    picked: list[dict[str, str]] = []
    used = 0
    for turn in reversed(turns):
        size = count_tokens(turn.content)
        if used + size > budget:
            if not picked and budget > 0:
                picked.append({"role": turn.role, "content": truncate_to_tokens(turn.content, budget)})
            break
        picked.append({"role": turn.role, "content": turn.content})
        used += size
    if len(turns) > len(picked) > 1 and picked[-1]["role"] == Message.Role.ASSISTANT:
        picked.pop()  # its question is older than the window
    return list(reversed(picked))


def full_history_tokens(message: Message, plain_system: str, question: str, hidden: Collection[int] = ()) -> int:
    """System prompt (same passages, no memory) + every earlier finished message + the whole question."""
    question_id = message.reply_to_id or message.pk
    history = selectors.turns_between(conversation_id=message.conversation_id, before_id=question_id, hidden=hidden)
    return count_tokens(plain_system) + sum(count_tokens(turn.content) for turn in history) + count_tokens(question)


def _request_rebuild(conversation_id: int) -> None:
    """Fold the memory again without the answers the owner lost (the job sets the tainted versions aside)."""
    from chat.services import memory_update_request

    memory_update_request(conversation_id=conversation_id)
