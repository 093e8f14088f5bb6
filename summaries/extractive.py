"""The offline summary: keep the sentences that carry facts, drop the rest, stay under a token budget.

No model is involved, so the summary never invents anything; it can only forget. What it keeps are the sentences a
later answer is most likely to need and cannot find again in the documents: names, numbers, dates and times,
decisions and open questions, from the user's side first (assistant answers mostly quote passages that retrieval
brings back anyway).

Korean names carry no capital letter: a name is recognised by the title or role that follows it (한지수 대리,
김 팀장님, 박민수 씨) or by the role noun it answers (담당자는 한지수…), with the particles Korean attaches to it.

To stay small it also drops what a later turn would not miss: a question that was answered right after it (unless
the question itself carries a name, number or date), all but the ``ANSWER_FACTS`` strongest sentences of an answer,
and a sentence that restates one already kept (same words, or nearly: see ``NEAR_DUPLICATE``). Questions that differ
only in their numbers fold into one line, the first wording with how often it was asked (``(×3)``; the latest
askings are in the recent turns anyway). Lines read
``U: …`` (the user said) and ``A: …`` (the assistant answered).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from protostar.text import split_sentences
from protostar.tokens import count_tokens, truncate_to_tokens

CITATION = re.compile(r"\[S\d+\]|\((?:[^()]{0,200}),\s*(?:p\.\s*\d+|\d+쪽)\)")
# The space a removed citation leaves before the punctuation that followed it: "policy [S1]." -> "policy ."
SPACE_BEFORE_PUNCTUATION = re.compile(r"\s+(?=[.,;:!?。！？])")
DECORATION = re.compile(r"^[\s>*_•#-]+|[\s*_]+$")
NORMALISE = re.compile(r"[\W_]+")
WORD = re.compile(r"\w+")
# "U: text" / "A: text"; earlier versions wrote "- U: text", which is still read.
LINE = re.compile(r"^(?:- )?(U|A): (.*)$")
# A fact sentence longer than this is cut (at a character boundary): one rambling sentence must not fill the memory.
SENTENCE_MAX_TOKENS = 80
MIN_SENTENCE_CHARS = 4
USER_WEIGHT = 2.0
# An answer is mostly passages restated (retrieval finds them again): only its strongest sentences are kept.
ANSWER_FACTS = 2
# Share of a sentence's words already in one kept sentence above which it counts as a restatement.
NEAR_DUPLICATE = 0.8

# Titles and forms of address that follow a Korean name, longest first so 본부장 is not read as 부장.
KOREAN_TITLES = (
    "부사장|본부장|센터장|연구원|변호사|회계사|선생님|매니저|팀장|과장|차장|부장|실장|대리|사원|주임|이사|상무|전무|"
    "사장|대표|회장|교수|박사|책임|선임|수석|씨|님"
)
# What may follow a title: the end, a non-Hangul character, an honorific 님, or a particle / copula ending.
AFTER_TITLE = (
    r"(?=님|$|[^가-힣]|[은는이가을를의께과와도만랑]|에게|께서|으로|로|입니다|이에요|예요|였|이었|이며|이고|이다)"
)
KOREAN_PERSON = re.compile(
    rf"[가-힣]{{2,4}}\s?(?:{KOREAN_TITLES}){AFTER_TITLE}|"
    r"(?:담당자|책임자|관리자|연락\s?담당|담당)[은는이가]?\s+[가-힣]{2,4}(?=\s|$|[^가-힣]|씨|님|입니다|이에요|예요|이고|이며)"
)

CUES: tuple[tuple[re.Pattern[str], float], ...] = (
    (re.compile(r"\d"), 1.0),
    # Korean dates, times, amounts and counts: 3월 5일, 오후 2시, 15%, 3,200만 원, 12명
    (re.compile(r"\d+\s*(?:년|월|일|시|분|%|퍼센트|원|만|억|천|명|개|주|층|호|달)|(?:오전|오후)\s*\d+\s*시"), 2.0),
    (
        re.compile(
            r"\b(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?\s+\d|\b\d{1,2}:\d{2}\b|"
            r"\d\s*%|[$€£₩]\s*\d|\b\d+\s*(?:am|pm|AM|PM)\b|\b(?:Monday|Tuesday|Wednesday|Thursday|Friday)\b"
        ),
        2.0,
    ),
    # A capitalised word after the first one (names of people, teams, products); "I" alone does not count.
    (re.compile(r"(?<=[\w,;:)] )[A-Z][a-zA-Z]+"), 2.0),
    (re.compile(r"이름[은이]|성함"), 2.0),
    # Korean names, by the title after them or the role noun before them (no capital letter marks them).
    (KOREAN_PERSON, 2.0),
    # Korean organisations are named by their kind: 한빛여행사, 대한물류, 서울대학교병원, (주)한빛.
    (
        re.compile(
            r"[가-힣]{2,}(?:여행사|물류|상사|건설|전자|은행|병원|대학교|재단|협회|공사|그룹)|\(주\)|㈜|주식회사"
        ),
        2.0,
    ),
    # Decisions taken (not rules that "need approval": those are in the documents).
    (
        re.compile(
            r"결정|확정|합의|승인(?:했|됐|되었|받았|하기로)|채택|하기로|선정|정했|정하였|"
            r"decid|agreed|agree to|approved|confirm|\bchose|\bchosen|settled on|go with|going with",
            re.IGNORECASE,
        ),
        3.0,
    ),
)
QUESTION = re.compile(r"[?？]|(?:나요|까요|습니까|인가요|은가요|는가요|을까|할까|는지요)\s*[.!]?$")
# "(×3)" after a folded question: how many times it was asked.
REPEATS = re.compile(r"\s*\(×(\d+)\)$")
DIGITS = re.compile(r"\d+(?:[.,]\d+)*")
QUESTION_WEIGHT = 1.0


@dataclass
class Fact:
    role: str  # "U" or "A"
    text: str
    score: float
    order: int
    repeats: int = 1

    @property
    def line(self) -> str:
        return f"{self.role}: {self.text}" + (f" (×{self.repeats})" if self.repeats > 1 else "")


def sentence_score(text: str, role: str, *, answered: bool = False) -> float:
    """How much a later answer may need this sentence; 0 means it is not worth keeping.

    A question counts as an open point only while unanswered (``answered`` is False): once the answer follows, the
    question is worth keeping only for the names, numbers or dates it carries itself.
    """
    score = sum(weight for pattern, weight in CUES if pattern.search(text))
    if not answered and QUESTION.search(text):
        score += QUESTION_WEIGHT
    return score * (USER_WEIGHT if role == "U" else 1.0)


def clean_sentence(text: str) -> str:
    text = SPACE_BEFORE_PUNCTUATION.sub("", CITATION.sub("", text))
    text = DECORATION.sub("", text.strip())
    text = " ".join(text.split()).strip('“”"')
    if count_tokens(text) > SENTENCE_MAX_TOKENS:
        text = truncate_to_tokens(text, SENTENCE_MAX_TOKENS - 1).rstrip() + "…"
    return text


def turn_facts(role: str, content: str, *, answered: bool = False) -> list[tuple[str, float]]:
    """The sentences of one turn worth remembering, with their scores, in order.

    ``answered``: a user turn the assistant answered right after (its questions are settled).
    """
    short = "U" if role == "user" else "A"
    found = []
    for part in split_sentences(content):
        text = clean_sentence(part)
        if len(text) < MIN_SENTENCE_CHARS:
            continue
        score = sentence_score(text, short, answered=answered)
        if score > 0:
            found.append((text, score))
    if short == "A" and len(found) > ANSWER_FACTS:
        strongest = sorted(range(len(found)), key=lambda i: (-found[i][1], i))[:ANSWER_FACTS]
        found = [found[i] for i in sorted(strongest)]
    return found


def parse_summary(previous: str) -> list[Fact]:
    """The facts of an earlier offline summary (lines this module wrote); other lines are kept as user facts."""
    facts = []
    for line in previous.splitlines():
        line = line.strip()
        if not line:
            continue
        match = LINE.match(line)
        role, text = (match.group(1), match.group(2)) if match else ("U", line.lstrip("-• ").strip())
        repeated = REPEATS.search(text)
        repeats = int(repeated.group(1)) if repeated else 1
        text = REPEATS.sub("", text)
        facts.append(Fact(role, text, sentence_score(text, role), len(facts), repeats=repeats))
    return facts


def _words(text: str) -> tuple[frozenset[str], frozenset[str]]:
    """The sentence's words, and those that tell one fact from a similar one: with a digit, or a capital letter
    other than the sentence's first."""
    words = WORD.findall(text)
    marked = frozenset(
        word.lower() for index, word in enumerate(words) if any(c.isdigit() or (index and c.isupper()) for c in word)
    )
    # A Korean name is marked too: "담당자는 박민수 대리입니다" is not a restatement of "담당자는 한지수 대리입니다".
    people = {name for match in KOREAN_PERSON.finditer(text) for name in WORD.findall(match.group(0))}
    return frozenset(word.lower() for word in words), marked | frozenset(people)


def _question_shape(text: str) -> frozenset[str] | None:
    """The words of a question with its numbers blanked, to find the same question asked about another number;
    ``None`` for a sentence that is not a question."""
    if not QUESTION.search(text):
        return None
    return frozenset(word.lower() for word in WORD.findall(DIGITS.sub("#", text)))


def _fold_question(facts: list[Fact], text: str, score: float) -> bool:
    """Fold a user question into a kept one that differs only in its numbers: the first wording stays, counted,
    and moves to the end (it is as recent as its latest asking)."""
    shape = _question_shape(text)
    if not shape:
        return False
    for index, fact in enumerate(facts):
        other = _question_shape(fact.text) if fact.role == "U" else None
        if other and len(shape & other) >= NEAR_DUPLICATE * max(len(shape), len(other)):
            facts.pop(index)
            facts.append(Fact("U", fact.text, max(score, fact.score), fact.order, repeats=fact.repeats + 1))
            return True
    return False


def _restates(words: tuple[frozenset[str], frozenset[str]], kept: list[tuple[frozenset[str], frozenset[str]]]) -> bool:
    """Whether a sentence adds (almost) nothing to one already kept: nearly the same words, and no name or number
    the kept one lacks ("team 1 gets 11 days" is not a restatement of "team 0 gets 10 days")."""
    plain, marked = words
    return bool(plain) and any(
        marked <= other and len(plain & other) >= NEAR_DUPLICATE * len(plain) for other, _ in kept
    )


def merge_facts(previous: str, turns: Sequence[tuple[str, str]]) -> list[Fact]:
    facts = parse_summary(previous)
    seen = {NORMALISE.sub("", fact.text.lower()) for fact in facts}
    kept_words = [_words(fact.text) for fact in facts]
    for index, (role, content) in enumerate(turns):
        answered = role == "user" and index + 1 < len(turns) and turns[index + 1][0] == "assistant"
        for text, score in turn_facts(role, content, answered=answered):
            key = NORMALISE.sub("", text.lower())
            words = _words(text)
            if not key or key in seen:
                continue
            if role == "user" and _fold_question(facts, text, score):
                seen.add(key)
                continue
            if _restates(words, kept_words):
                continue
            seen.add(key)
            kept_words.append(words)
            facts.append(Fact("U" if role == "user" else "A", text, score, len(facts)))
    return facts


def fit_to_budget(facts: list[Fact], max_tokens: int) -> list[Fact]:
    """Drop facts until the summary fits, keeping chronological order: the assistant's first (answers restate the
    documents, which retrieval finds again; what the user said is nowhere else), then the weakest, oldest first."""
    eviction = sorted(facts, key=lambda fact: (fact.role == "U", fact.score, fact.order))
    # Per-line counts (+1 for the newline) find the cut quickly; the exact count of the joined text confirms it.
    sizes = {id(fact): count_tokens(fact.line) + 1 for fact in facts}
    total = sum(sizes.values())
    dropped: set[int] = set()
    while eviction and total > max_tokens:
        weakest = eviction.pop(0)
        dropped.add(id(weakest))
        total -= sizes[id(weakest)]
    kept = [fact for fact in facts if id(fact) not in dropped]
    while eviction and count_tokens(render(kept)) > max_tokens:
        kept.remove(eviction.pop(0))
    return kept


def render(facts: Sequence[Fact]) -> str:
    return "\n".join(fact.line for fact in facts)


def summarize(previous: str, turns: Sequence[tuple[str, str]], max_tokens: int) -> str:
    """The new summary: the previous one's facts plus the new turns' facts, within ``max_tokens``."""
    return render(fit_to_budget(merge_facts(previous, turns), max_tokens))
