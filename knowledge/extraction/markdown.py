"""Markdown: the source text is kept (it reads well as is); ATX and setext headings become sections."""

from __future__ import annotations

from itertools import accumulate

from markdown_it import MarkdownIt
from markdown_it.token import Token

from knowledge.extraction.base import ExtractedDocument, SectionSpan, SectionTracker, no_text
from knowledge.extraction.text import read_text


def extract_markdown(data: bytes, *, max_chars: int) -> ExtractedDocument:
    text = read_text(data, max_chars=max_chars)
    if not text.strip():
        raise no_text()
    return ExtractedDocument(text=text, sections=_sections(text))


def _sections(text: str) -> list[SectionSpan]:
    # Offsets are computed on the normalised text itself, so they index ``ExtractedDocument.text`` exactly.
    lines = text.split("\n")
    line_starts = [0, *accumulate(len(line) + 1 for line in lines)]
    tracker = SectionTracker()
    tokens = MarkdownIt("commonmark").parse(text)
    for index, token in enumerate(tokens):
        if token.type != "heading_open" or token.map is None:
            continue
        title = _plain(tokens[index + 1]) if index + 1 < len(tokens) else ""
        tracker.heading(int(token.tag[1]), title, line_starts[min(token.map[0], len(lines))])
    return tracker.finish(len(text))


def _plain(inline: Token) -> str:
    """Heading text without markup: ``## Install `uv` on **Linux**`` → ``Install uv on Linux``."""
    if not inline.children:
        return inline.content
    parts = []
    for child in inline.children:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
    return "".join(parts)
