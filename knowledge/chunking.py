"""Split extracted text into token-bounded, overlapping chunks whose offsets point exactly into the text.

Units, from coarse to fine: paragraphs (blank-line separated), sentences (``.?!`` and CJK ``。？！``, including
Korean endings such as ``다.``/``요.``), lines, words and finally characters. A unit is only split further when it
does not fit. Every section heading starts a new chunk, and chunks never overlap across a heading.
Each unit is counted once and every chunk once more, so chunking stays linear in the text length.

A chunk that is already at least half full ends at a page break rather than running on into the next page. Greedy
packing alone shifts every later boundary when one page changes length; ending at page breaks puts the boundaries
back in step after the changed page, so re-ingesting an edited document re-embeds only the chunks near the edit.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, replace
from itertools import pairwise

from knowledge.extraction import ExtractedDocument, PageSpan
from protostar.tokens import char_boundary, count_tokens, decoded_prefix_length, encode

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
_CLOSERS = re.escape("\"'”’)]}»」』")
# A sentence ends at terminal punctuation (plus closing quotes/brackets) followed by whitespace; CJK full stops
# need no space; a Hangul syllable right before and after a stop marks a Korean sentence end written without one.
_SENTENCE_END = re.compile(rf"(?:[.?!…][{_CLOSERS}]*(?=\s)|[。？！][{_CLOSERS}]*|(?<=[가-힣])[.?!](?=[가-힣]))")
_LINE_END = re.compile(r"\n")
_WORD_END = re.compile(r"\s")
# A chunk filled to at least this share of the target ends at the next page break (see the module docstring).
PAGE_BREAK_MIN_FILL = 0.5


@dataclass(frozen=True)
class ChunkDraft:
    ordinal: int
    text: str
    char_start: int
    char_end: int
    page_start: int | None
    page_end: int | None
    section_path: tuple[str, ...]
    token_count: int


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    tokens: int
    starts_section: bool
    starts_page: bool = False


def chunk_document(doc: ExtractedDocument, *, target_tokens: int, overlap_tokens: int) -> list[ChunkDraft]:
    """Chunks of at most ``target_tokens`` tokens, each (except after a heading) repeating ~``overlap_tokens``."""
    if target_tokens < 1:
        raise ValueError("target_tokens must be at least 1")
    # The overlap must leave room for new text, or chunking could not advance.
    overlap_tokens = max(0, min(overlap_tokens, target_tokens // 2))
    units = _mark_page_starts(doc, _units(doc, piece_limit=max(1, target_tokens - overlap_tokens)))
    spans = _pack(doc.text, units, target_tokens=target_tokens, overlap_tokens=overlap_tokens)
    return [_draft(doc, ordinal, start, end, tokens) for ordinal, (start, end, tokens) in enumerate(spans)]


# --- units ---------------------------------------------------------------------------------------------------


def _units(doc: ExtractedDocument, *, piece_limit: int) -> list[_Unit]:
    text = doc.text
    units: list[_Unit] = []
    bounds = sorted({0, len(text), *(section.start for section in doc.sections if 0 < section.start < len(text))})
    for segment_start, segment_end in pairwise(bounds):
        first = True
        for start, end in _split(text, segment_start, segment_end, _PARAGRAPH_BREAK):
            for unit_start, unit_end, tokens in _fit(text, start, end, piece_limit):
                units.append(_Unit(unit_start, unit_end, tokens, starts_section=first and segment_start > 0))
                first = False
    return units


def _mark_page_starts(doc: ExtractedDocument, units: list[_Unit]) -> list[_Unit]:
    """Flag each unit that is the first one on a new page (the first page needs no flag)."""
    breaks = sorted(page.start for page in doc.pages[1:])
    if not breaks:
        return units
    marked: list[_Unit] = []
    cursor = 0
    for index, unit in enumerate(units):
        previous_end = units[index - 1].end if index else 0
        while cursor < len(breaks) and breaks[cursor] <= previous_end:
            cursor += 1
        starts_page = bool(index) and cursor < len(breaks) and breaks[cursor] <= unit.start
        marked.append(replace(unit, starts_page=starts_page) if starts_page else unit)
    return marked


def _split(text: str, start: int, end: int, separator: re.Pattern[str]) -> list[tuple[int, int]]:
    """Pieces of ``text[start:end]`` cut after each separator match, with surrounding whitespace trimmed."""
    pieces = []
    cursor = start
    for match in separator.finditer(text, start, end):
        pieces.append((cursor, match.end()))
        cursor = match.end()
    pieces.append((cursor, end))
    return [trimmed for piece in pieces if (trimmed := _trim(text, *piece))]


def _trim(text: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if end > start else None


def _fit(text: str, start: int, end: int, limit: int) -> list[tuple[int, int, int]]:
    """``(start, end, tokens)`` pieces of at most ``limit`` tokens, split as coarsely as possible."""
    tokens = count_tokens(text[start:end])
    if tokens <= limit:
        return [(start, end, tokens)]
    for separator in (_SENTENCE_END, _LINE_END, _WORD_END):
        pieces = _split(text, start, end, separator)
        if len(pieces) > 1:
            return [fitted for piece in pieces for fitted in _fit(text, *piece, limit)]
    return _cut(text, start, end, limit)


def _cut(text: str, start: int, end: int, limit: int) -> list[tuple[int, int, int]]:
    """Hard cuts at character boundaries for a run with no sentence, line or word break (long Korean runs)."""
    pieces = []
    window = limit * 4
    while start < end:
        # Encode a window, not the whole rest of the run: that would be quadratic in the run's length.
        piece = text[start : min(end, start + window)]
        tokens = encode(piece)
        if len(tokens) <= limit:
            if start + len(piece) < end:
                window *= 2
                continue
            pieces.append((start, end, len(tokens)))
            break
        length, count = _prefix_within(piece, tokens, limit)
        pieces.append((start, start + length, count))
        start += length
    return pieces


def _prefix_within(piece: str, tokens: list[int], limit: int) -> tuple[int, int]:
    """Length and exact token count of the longest prefix of ``piece`` (at least one character) within ``limit``."""
    keep = limit
    while True:
        length = char_boundary(piece, decoded_prefix_length(piece, tokens, keep)) or 1
        count = count_tokens(piece[:length])
        # Re-encoding a prefix can merge differently at the cut; shrink until the exact count fits.
        if count <= limit or keep <= 1:
            return length, count
        keep -= 1


# --- packing -------------------------------------------------------------------------------------------------

# Each round adds the units the remaining budget can take by their own counts, then recounts the chunk exactly;
# estimates are close, so a few rounds fill a chunk without re-encoding it once per unit.
_GROW_ROUNDS = 4


def _pack(text: str, units: list[_Unit], *, target_tokens: int, overlap_tokens: int) -> list[tuple[int, int, int]]:
    """``(start, end, tokens)`` of each chunk: whole units, exact counts, the previous chunk's tail in front."""
    spans: list[tuple[int, int, int]] = []
    index = 0
    overlap_start: int | None = None
    while index < len(units):
        start = units[index].start
        if overlap_start is not None and not units[index].starts_section:
            start = overlap_start
        stop, tokens = _extend(text, units, start, index, target_tokens)
        if tokens > target_tokens:  # the repeated tail left no room for the next unit: drop the overlap
            start = units[index].start
            stop, tokens = _extend(text, units, start, index, target_tokens)
        end = units[stop - 1].end
        spans.append((start, end, tokens))
        index = stop
        overlap_start = _overlap_start(text, start, end, overlap_tokens) if overlap_tokens else None
    return spans


def _extend(text: str, units: list[_Unit], start: int, index: int, target: int) -> tuple[int, int]:
    """``(stop, tokens)``: as many whole units from ``index`` as fit in ``target`` with the text from ``start``."""
    stop, tokens = index + 1, count_tokens(text[start : units[index].end])
    for _ in range(_GROW_ROUNDS):
        probe = _reach(text, units, stop, target - tokens)
        if probe == stop:
            break
        probe_tokens = count_tokens(text[start : units[probe - 1].end])
        if probe_tokens <= target:
            stop, tokens = probe, probe_tokens
            continue
        stop, tokens = _largest_fitting(text, units, start, (stop, tokens), probe, target)
        break
    return _end_at_page_break(text, units, start, index, (stop, tokens), target)


def _end_at_page_break(
    text: str, units: list[_Unit], start: int, index: int, fits: tuple[int, int], target: int
) -> tuple[int, int]:
    """Pull the end back to the last page break inside the chunk when the chunk is at least half full there."""
    stop, tokens = fits
    for candidate in range(stop - 1, index, -1):
        if units[candidate].starts_page:
            candidate_tokens = count_tokens(text[start : units[candidate - 1].end])
            if candidate_tokens >= PAGE_BREAK_MIN_FILL * target:
                return candidate, candidate_tokens
            break
    return stop, tokens


def _reach(text: str, units: list[_Unit], stop: int, budget: int) -> int:
    """Index after the units that fit ``budget`` by estimate (a line break between units costs a token)."""
    while stop < len(units) and not units[stop].starts_section:
        cost = units[stop].tokens + ("\n" in text[units[stop - 1].end : units[stop].start])
        if cost > budget:
            break
        budget -= cost
        stop += 1
    return stop


def _largest_fitting(
    text: str, units: list[_Unit], start: int, fits: tuple[int, int], too_big: int, target: int
) -> tuple[int, int]:
    """Binary search between a stop known to fit and one known not to."""
    (low, low_tokens), high = fits, too_big
    while high - low > 1:
        middle = (low + high) // 2
        tokens = count_tokens(text[start : units[middle - 1].end])
        if tokens <= target:
            low, low_tokens = middle, tokens
        else:
            high = middle
    return low, low_tokens


def _overlap_start(text: str, start: int, end: int, overlap_tokens: int) -> int | None:
    """Where the next chunk starts so that it repeats about ``overlap_tokens`` of this chunk's tail.

    The tail begins at the first sentence start inside the token budget, else at a word start, else at a
    character boundary, so the overlap is made of whole sentences whenever a sentence fits.
    """
    chunk = text[start:end]
    tokens = encode(chunk)
    if len(tokens) <= overlap_tokens:
        return None  # repeating the whole chunk would add nothing new
    position = decoded_prefix_length(chunk, tokens, len(tokens) - overlap_tokens)
    position = _sentence_or_word_start(chunk, position)
    while position < len(chunk) and (chunk[position].isspace() or char_boundary(chunk, position) != position):
        position += 1
    return start + position if position < len(chunk) else None


def _sentence_or_word_start(chunk: str, earliest: int) -> int:
    if earliest == 0:
        return 0
    for patterns in ((_PARAGRAPH_BREAK, _SENTENCE_END), (_WORD_END,)):
        ends = [end for pattern in patterns if (end := _first_end_from(pattern, chunk, earliest)) is not None]
        if ends:
            return min(ends)
    return earliest


def _first_end_from(pattern: re.Pattern[str], chunk: str, earliest: int) -> int | None:
    """End of the first match that ends at or after ``earliest`` (a boundary right at it counts)."""
    for match in pattern.finditer(chunk, max(0, earliest - 4)):
        if match.end() >= earliest:
            return match.end() if match.end() < len(chunk) else None
    return None


# --- pages and sections --------------------------------------------------------------------------------------


def _draft(doc: ExtractedDocument, ordinal: int, start: int, end: int, tokens: int) -> ChunkDraft:
    page_start, page_end = _page_range(doc, start, end)
    return ChunkDraft(
        ordinal=ordinal,
        text=doc.text[start:end],
        char_start=start,
        char_end=end,
        page_start=page_start,
        page_end=page_end,
        section_path=_section_at(doc, start),
        token_count=tokens,
    )


def _page_range(doc: ExtractedDocument, start: int, end: int) -> tuple[int | None, int | None]:
    touched = [page.number for page in _pages_near(doc, start, end) if page.start < end and page.end > start]
    if not touched:
        return None, None
    return min(touched), max(touched)


def _pages_near(doc: ExtractedDocument, start: int, end: int) -> list[PageSpan]:
    starts = [page.start for page in doc.pages]
    first = max(0, bisect_right(starts, start) - 1)
    last = bisect_right(starts, end)
    return doc.pages[first:last]


def _section_at(doc: ExtractedDocument, offset: int) -> tuple[str, ...]:
    starts = [section.start for section in doc.sections]
    index = bisect_right(starts, offset) - 1
    if index >= 0 and offset < doc.sections[index].end:
        return doc.sections[index].path
    return ()


# --- sentence windows ----------------------------------------------------------------------------------------

_WINDOW_BREAK = re.compile(rf"{_SENTENCE_END.pattern}|\n")


def sentence_windows(text: str, *, target_tokens: int) -> list[tuple[int, int]]:
    """``(start, end)`` spans of consecutive sentences (or lines: list items, table rows) of about ``target_tokens``.

    Sentences are packed greedily and never split, so a window holding one long sentence can exceed the target.
    Together the windows cover every sentence of ``text`` once, in order.
    """
    windows: list[tuple[int, int]] = []
    start: int | None = None
    end = tokens = 0
    for piece_start, piece_end in _split(text, 0, len(text), _WINDOW_BREAK):
        piece_tokens = count_tokens(text[piece_start:piece_end])
        if start is not None and tokens + piece_tokens > target_tokens:
            windows.append((start, end))
            start = None
        if start is None:
            start, tokens = piece_start, 0
        end = piece_end
        tokens += piece_tokens
    if start is not None:
        windows.append((start, end))
    return windows
