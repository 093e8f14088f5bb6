"""A search hit's snippet: the window of the chunk with the most query-term hits, and the spans to highlight."""

from __future__ import annotations

import re

SNIPPET_CHARS = 240


def make_snippet(text: str, terms: list[str]) -> tuple[str, tuple[tuple[int, int], ...]]:
    """The window of ``text`` with the most query-term hits, and the spans to highlight in it."""
    spans = _term_spans(text, terms)
    if len(text) <= SNIPPET_CHARS:
        start = 0
    elif spans:
        # Slide a window start over hit positions; keep the one covering the most hits.
        best = max(spans, key=lambda s: sum(1 for o in spans if s[0] <= o[0] and o[1] <= s[0] + SNIPPET_CHARS))
        start = max(0, min(best[0] - 40, len(text) - SNIPPET_CHARS))
    else:
        start = 0
    end = min(len(text), start + SNIPPET_CHARS)
    snippet = text[start:end]
    prefix = "…" if start > 0 else ""
    suffix = "…" if end < len(text) else ""
    shift = len(prefix) - start
    inside = tuple((s + shift, e + shift) for s, e in spans if s >= start and e <= end)
    return prefix + snippet + suffix, inside


def _term_spans(text: str, terms: list[str]) -> list[tuple[int, int]]:
    if not terms:
        return []
    pattern = re.compile("|".join(re.escape(t) for t in sorted(set(terms), key=len, reverse=True)), re.IGNORECASE)
    merged: list[tuple[int, int]] = []
    for match in pattern.finditer(text):
        if merged and match.start() <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], match.end()))
        else:
            merged.append((match.start(), match.end()))
    return merged
