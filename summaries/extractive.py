"""The offline summary: keep the sentences that carry facts, drop the rest, stay under a token budget.

No model is involved, so the summary never invents anything; it can only forget. What it keeps are the sentences a
later answer is most likely to need and cannot find again in the documents: names, numbers, dates and times,
decisions and open questions, from the user's side first (assistant answers mostly quote passages that retrieval
brings back anyway).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from protostar.tokens import count_tokens, truncate_to_tokens

SENTENCE_BREAK = re.compile(r"(?<=[.!?。！？…])\s+|\n+")
CITATION = re.compile(r"\[S\d+\]|\((?:[^()]{0,200}),\s*(?:p\.\s*\d+|\d+쪽)\)")
DECORATION = re.compile(r"^[\s>*_•#-]+|[\s*_]+$")
NORMALISE = re.compile(r"[\W_]+")
LINE = re.compile(r"^- (U|A): (.*)$")
# A fact sentence longer than this is cut (at a character boundary): one rambling sentence must not fill the memory.
SENTENCE_MAX_TOKENS = 80
MIN_SENTENCE_CHARS = 4
USER_WEIGHT = 2.0

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
    (re.compile(r"이름[은이]|성함|[가-힣]{2,4}\s?(?:씨|님|팀장|과장|부장|대리|대표|교수|매니저)\b"), 2.0),
    (
        re.compile(
            r"결정|확정|합의|승인|채택|하기로|선정|decid|agree|approv|confirm|\bchose|\bchosen|settled on|go with",
            re.IGNORECASE,
        ),
        3.0,
    ),
    (re.compile(r"[?？]"), 1.0),
)


@dataclass
class Fact:
    role: str  # "U" or "A"
    text: str
    score: float
    order: int

    @property
    def line(self) -> str:
        return f"- {self.role}: {self.text}"


def sentence_score(text: str, role: str) -> float:
    score = sum(weight for pattern, weight in CUES if pattern.search(text))
    return score * (USER_WEIGHT if role == "U" else 1.0)


def clean_sentence(text: str) -> str:
    text = CITATION.sub("", text)
    text = DECORATION.sub("", text.strip())
    text = " ".join(text.split()).strip('“”"')
    if count_tokens(text) > SENTENCE_MAX_TOKENS:
        text = truncate_to_tokens(text, SENTENCE_MAX_TOKENS - 1).rstrip() + "…"
    return text


def turn_facts(role: str, content: str) -> list[tuple[str, float]]:
    """The sentences of one turn worth remembering, with their scores, in order."""
    short = "U" if role == "user" else "A"
    found = []
    for part in SENTENCE_BREAK.split(content):
        text = clean_sentence(part)
        if len(text) < MIN_SENTENCE_CHARS or text.startswith(("No language model", "언어 모델이")):
            continue
        score = sentence_score(text, short)
        if score > 0:
            found.append((text, score))
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
        facts.append(Fact(role, text, sentence_score(text, role), len(facts)))
    return facts


def merge_facts(previous: str, turns: Sequence[tuple[str, str]]) -> list[Fact]:
    facts = parse_summary(previous)
    seen = {NORMALISE.sub("", fact.text.lower()) for fact in facts}
    for role, content in turns:
        for text, score in turn_facts(role, content):
            key = NORMALISE.sub("", text.lower())
            if key and key not in seen:
                seen.add(key)
                facts.append(Fact("U" if role == "user" else "A", text, score, len(facts)))
    return facts


def fit_to_budget(facts: list[Fact], max_tokens: int) -> list[Fact]:
    """Drop the weakest facts, oldest first among equals, until the summary fits; keeps chronological order."""
    eviction = sorted(facts, key=lambda fact: (fact.score, fact.order))
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
