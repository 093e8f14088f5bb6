"""Text handling for Korean and English, in one place: scripts, language, sentences, stopwords, terms.

Korean words carry particles and endings ("검색은", "검색을") and are often written without spaces, so whitespace
words match poorly (docs/architecture.md, Retrieval): Hangul (and other CJK) runs become overlapping character
bigrams, Latin letters and digits lowercase words, so product codes like "XR-7710" are found as "xr" + "7710".

Two uses of terms, two functions: ``keyword_terms`` / ``topical_terms`` feed the keyword index and its queries
(``knowledge``), ``match_terms`` / ``sentence_terms`` score the sentences of retrieved passages (the extractive
answerer), where crude English stemming helps ("refunds" meets "refund") and request words ("tell", "explain")
are noise. Nothing here reads settings or imports Django.
"""

from __future__ import annotations

import re
import unicodedata

# --- Scripts ------------------------------------------------------------------------------------------------------

HANGUL_SYLLABLES = "\uac00-\ud7a3"
# Syllables, jamo, compatibility jamo, jamo extended-A and -B.
HANGUL = HANGUL_SYLLABLES + "\u1100-\u11ff\u3130-\u318f\ua960-\ua97f\ud7b0-\ud7ff"
# Hangul, kana, CJK ideographs (and extension A): the scripts written without spaces between words.
CJK = HANGUL + "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff"

_HANGUL_CHAR = re.compile(f"[{HANGUL}]")
_SYLLABLE_RUN = re.compile(f"[{HANGUL_SYLLABLES}]+")
_CJK_CHAR = re.compile(f"[{CJK}]")
_KEYWORD_TOKEN = re.compile(rf"[{CJK}]+|[^\W_{CJK}]+")

# Share of letters that must be Hangul for a text to count as Korean. One Hangul syllable carries as much as a
# whole short English word, so a fifth of the letters already means the writer is using Korean.
KOREAN_LETTER_SHARE = 0.2


def is_hangul(char: str) -> bool:
    return bool(_HANGUL_CHAR.match(char))


def detect_language(text: str) -> str:
    """``"ko"`` when Hangul makes up a meaningful share of the letters, else ``"en"`` (also for no letters)."""
    letters = hangul = 0
    for char in text:
        if char.isalpha():
            letters += 1
            hangul += is_hangul(char)
    if letters == 0:
        return "en"
    return "ko" if hangul / letters >= KOREAN_LETTER_SHARE else "en"


# --- Sentences and pieces -----------------------------------------------------------------------------------------

# After Latin or CJK sentence punctuation (and the ellipsis), or at any line break.
SENTENCE_BREAK = re.compile(r"(?<=[.!?。！？…])\s+|\n+")
_PIECE = re.compile(r"\s*\S+|\s+")


def split_sentences(text: str) -> list[str]:
    """The text's sentences and lines, unstripped, possibly empty (callers clean them their own way)."""
    return SENTENCE_BREAK.split(text)


def split_pieces(text: str) -> list[str]:
    """About one word per piece with its leading whitespace; joined they equal ``text`` exactly."""
    return _PIECE.findall(text)


# --- Stopwords ----------------------------------------------------------------------------------------------------

# Question words carry no topic; the keyword search drops them ("how long must a password be").
QUESTION_STOPWORDS = frozenset(
    "a an and are as at be by can could did do does for from get gets got had has have how i if in into is it its "
    "me my of on or our should so than that the their them then there these they this to was we were what when "
    "where which who whom why will with would you your".split()
)
# Sentence scoring also drops the other function words and the words of a request ("please explain").
FUNCTION_STOPWORDS = QUESTION_STOPWORDS | frozenset(
    "about above after again against all also am any because been before being below between both but doing "
    "down during each few further having he her here hers him his just more most no nor not off once only other "
    "ours out over own same she some such theirs those through too under until up very while yours tell please "
    "explain describe give know show".split()
)


# --- Terms --------------------------------------------------------------------------------------------------------

MAX_QUERY_TERMS = 64


def keyword_terms(text: str) -> list[str]:
    """Keyword-index terms in text order, repeats kept (term frequency matters for ranking): CJK runs as
    overlapping character bigrams (a lone character as itself), other words lowercase."""
    terms: list[str] = []
    for match in _KEYWORD_TOKEN.finditer(unicodedata.normalize("NFC", text)):
        token = match.group().lower()
        if _CJK_CHAR.match(token):
            if len(token) == 1:
                terms.append(token)
            else:
                terms.extend(token[i : i + 2] for i in range(len(token) - 1))
        else:
            terms.append(token)
    return terms


def topical_terms(query: str) -> list[str]:
    """Distinct topical keyword terms of a query, in order, capped so a pasted essay cannot build a giant query."""
    terms = keyword_terms(query)
    topical = [t for t in terms if t not in QUESTION_STOPWORDS]
    seen: dict[str, None] = {}
    for term in topical or terms:
        seen.setdefault(term, None)
        if len(seen) >= MAX_QUERY_TERMS:
            break
    return list(seen)


_WORD = re.compile(r"\w+")


def _stem(word: str) -> str:
    # Crude on purpose: "refunds"/"refunded"/"refunding" should meet "refund"; precision matters less than recall
    # because the passages were already retrieved as relevant.
    for suffix in ("ing", "ies", "ed", "es", "s", "ly"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def match_terms(text: str) -> set[str]:
    """Terms for matching a question against sentences. English: lowercase stemmed words minus stopwords. Korean:
    syllable bigrams (particles glue onto words, so whole-word matching fails; bigrams find 환불 in 환불은), or the
    syllable itself for a one-syllable word."""
    terms: set[str] = set()
    for token in _WORD.findall(text.lower()):
        for run in _SYLLABLE_RUN.findall(token):
            terms.update([run] if len(run) == 1 else (run[i : i + 2] for i in range(len(run) - 1)))
        for rest in _SYLLABLE_RUN.sub(" ", token).split():
            if rest not in FUNCTION_STOPWORDS and (len(rest) > 1 or rest.isdigit()):
                terms.add(_stem(rest))
    return terms


def sentence_terms(text: str) -> set[str]:
    """``match_terms`` plus every single syllable, so a one-syllable query word (돈, 법) matches inside longer words."""
    terms = match_terms(text)
    for run in _SYLLABLE_RUN.findall(text):
        terms.update(run)
    return terms
