"""The offline answerer, for when no language model endpoint is set: the retrieved passages' most relevant
sentences, quoted with their citation labels under the ``answer_extractive`` prompt's wording (clearly labelled as
extracts). Deterministic; never invents text. Its answers are marked by ``model_name`` (``EXTRACTIVE_MODEL_NAME``)
on the stored message, which is how conversation memory tells a quoted answer from a written one.
"""

from __future__ import annotations

import itertools
import math
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from prompts.render import render_prompt
from protostar.llm.base import ChatRequest, Passage, Usage
from protostar.text import match_terms, sentence_terms, split_pieces, split_sentences
from protostar.tokens import count_tokens

EXTRACTIVE_MODEL_NAME = "extractive"

MAX_WORDS = 200
MAX_SENTENCE_WORDS = 120
MAX_SENTENCES_PER_PASSAGE = 3
# A sentence joins the answer only if it scores at least this share of the best one, so a sentence that merely
# shares a common word does not pad the answer.
RELATIVE_SCORE_FLOOR = 0.5

LIST_MARK = re.compile(r"^\s*(?:[-*•#>]+|\d+[.)])\s+")


@dataclass
class _Sentence:
    passage: int
    position: int
    text: str
    terms: set[str]
    score: float = 0.0

    @property
    def words(self) -> int:
        return len(self.text.split())


def _sentences(passages: Sequence[Passage]) -> list[_Sentence]:
    found = []
    for index, passage in enumerate(passages):
        parts = (LIST_MARK.sub("", part).strip() for part in split_sentences(passage.text))
        for position, text in enumerate(part for part in parts if part):
            words = text.split()
            if len(words) > MAX_SENTENCE_WORDS:
                text = " ".join(words[:MAX_SENTENCE_WORDS]) + " …"
            found.append(_Sentence(index, position, text, sentence_terms(text)))
    return found


def _score(sentences: list[_Sentence], question: str) -> None:
    """Sum of the inverse sentence frequency of the question terms a sentence contains: rare shared terms count
    most, and Korean endings such as 습니다 that every sentence shares count for almost nothing."""
    wanted = match_terms(question)
    total = len(sentences)
    frequency: dict[str, int] = {}
    for sentence in sentences:
        for term in sentence.terms & wanted:
            frequency[term] = frequency.get(term, 0) + 1
    weight = {term: math.log(1 + total / count) for term, count in frequency.items()}
    for sentence in sentences:
        sentence.score = sum(weight[term] for term in sentence.terms & wanted)


def select_sentences(passages: Sequence[Passage], question: str) -> list[_Sentence]:
    """The best sentences within the word budget, best first. Without any shared term (a Korean question over
    English documents, say) the passages' own order is the only relevance signal: their opening sentences."""
    sentences = _sentences(passages)
    _score(sentences, question)
    best = max((s.score for s in sentences), default=0.0)
    if best > 0:
        ranked = sorted(
            (s for s in sentences if s.score >= best * RELATIVE_SCORE_FLOOR),
            key=lambda s: (-s.score, s.passage, s.position),
        )
    else:
        ranked = [s for s in sentences if s.position < 2]
    chosen: list[_Sentence] = []
    words = 0
    per_passage: dict[int, int] = {}
    for sentence in ranked:
        if words + sentence.words > MAX_WORDS and chosen:
            continue
        if per_passage.get(sentence.passage, 0) >= MAX_SENTENCES_PER_PASSAGE:
            continue
        chosen.append(sentence)
        words += sentence.words
        per_passage[sentence.passage] = per_passage.get(sentence.passage, 0) + 1
    return chosen


def build_excerpts(passages: Sequence[Passage], chosen: list[_Sentence]) -> list[dict[str, Any]]:
    """One excerpt per passage, most relevant passage first, its sentences in document order ("…" marks a gap)."""
    order: list[int] = []
    for sentence in chosen:
        if sentence.passage not in order:
            order.append(sentence.passage)
    excerpts = []
    for index in order:
        picked = sorted((s for s in chosen if s.passage == index), key=lambda s: s.position)
        text = picked[0].text
        for previous, current in itertools.pairwise(picked):
            text += (" " if current.position == previous.position + 1 else " … ") + current.text
        passage = passages[index]
        excerpts.append({"label": passage.label, "title": passage.title, "page": passage.page, "text": text})
    return excerpts


@dataclass
class TextStream:
    """A TokenStream over text that already exists: word-sized pieces, as fast as the reader takes them."""

    text: str
    usage: Usage = field(default_factory=Usage)
    _closed: threading.Event = field(default_factory=threading.Event, repr=False)

    def __iter__(self) -> Iterator[str]:
        for piece in split_pieces(self.text):
            if self._closed.is_set():
                return
            yield piece

    def close(self) -> None:
        self._closed.set()

    def __enter__(self) -> TextStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ExtractiveChatModel:
    """Answers with the most relevant sentences of the retrieved passages, quoted with their citation labels and
    clearly labelled as extracts. Deterministic; never invents text."""

    model_name = EXTRACTIVE_MODEL_NAME

    def answer(self, request: ChatRequest) -> str:
        language = "ko" if request.language == "ko" else "en"
        chosen = select_sentences(request.passages, request.focus or request.question)
        excerpts = build_excerpts(request.passages, chosen)
        return render_prompt("answer_extractive", question=request.question, language=language, excerpts=excerpts)

    def _usage(self, request: ChatRequest, text: str) -> Usage:
        prompt = "\n".join(message.get("content", "") for message in request.messages)
        return Usage(prompt_tokens=count_tokens(prompt), completion_tokens=count_tokens(text))

    def stream(self, request: ChatRequest) -> TextStream:
        text = self.answer(request)
        return TextStream(text, self._usage(request, text))

    def complete(self, request: ChatRequest) -> tuple[str, Usage]:
        text = self.answer(request)
        return text, self._usage(request, text)
