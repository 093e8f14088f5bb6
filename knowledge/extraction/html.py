"""HTML: only the text a reader would see; block elements become line breaks, h1–h6 become sections."""

from __future__ import annotations

import re
import unicodedata

from bs4 import BeautifulSoup, NavigableString, Tag
from bs4.element import PreformattedString

from knowledge.extraction.base import ExtractedDocument, ExtractionError, SectionTracker, TextBuilder, no_text
from knowledge.extraction.detect import decode_text

DROPPED = frozenset(
    {"script", "style", "noscript", "template", "head", "svg", "math", "iframe", "object", "embed", "canvas"}
)
PARAGRAPH_BLOCKS = frozenset(
    {
        "p", "h1", "h2", "h3", "h4", "h5", "h6", "table", "blockquote", "pre", "ul", "ol", "dl", "section",
        "article", "header", "footer", "main", "nav", "aside", "figure", "form", "fieldset", "address", "hr",
        "details",
    }
)  # fmt: skip
LINE_BLOCKS = frozenset({"div", "li", "tr", "dt", "dd", "br", "caption", "summary", "legend", "figcaption", "option"})
CELLS = frozenset({"td", "th"})
HEADINGS = {f"h{level}": level for level in range(1, 7)}
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufeff]")


def extract_html(data: bytes, *, max_chars: int) -> ExtractedDocument:
    markup = decode_text(data)
    if markup is None:
        raise ExtractionError("The HTML file is not valid UTF-8 or UTF-16 text.")
    writer = _Writer(max_chars)
    _walk(BeautifulSoup(markup, "lxml"), writer)
    text = writer.builder.text().rstrip()
    if not text.strip():
        raise no_text()
    return ExtractedDocument(text=text, sections=writer.sections.finish(len(text)))


def _walk(root: Tag, writer: _Writer) -> None:
    # Iterative on purpose: real pages nest deeper than Python's recursion limit.
    stack: list[tuple[Tag | NavigableString, bool]] = [(root, False)]
    while stack:
        node, closing = stack.pop()
        if closing:
            writer.close(node)
        elif isinstance(node, NavigableString):
            if not isinstance(node, PreformattedString):  # comments, doctype, CDATA, processing instructions
                writer.text(str(node))
        elif node.name not in DROPPED and not node.has_attr("hidden"):
            writer.open(node)
            stack.append((node, True))
            stack.extend((child, False) for child in reversed(node.contents))


class _Writer:
    def __init__(self, max_chars: int) -> None:
        self.builder = TextBuilder(max_chars)
        self.sections = SectionTracker()
        self.pending_space = False
        self.pre_depth = 0

    def open(self, tag: Tag) -> None:
        name = tag.name
        if name in PARAGRAPH_BLOCKS or name in LINE_BLOCKS:
            self._break(2 if name in PARAGRAPH_BLOCKS else 1)
        if name == "pre":
            self.pre_depth += 1
        elif name in HEADINGS:
            self.sections.heading(HEADINGS[name], tag.get_text(" "), self.builder.length)
        elif name in CELLS and self.builder.last not in ("", "\n"):
            self.builder.append(" | ")
            self.pending_space = False

    def close(self, tag: Tag) -> None:
        name = tag.name
        if name == "pre":
            self.pre_depth -= 1
        if name in PARAGRAPH_BLOCKS or name in LINE_BLOCKS:
            self._break(2 if name in PARAGRAPH_BLOCKS else 1)

    def text(self, raw: str) -> None:
        cleaned = _CONTROL.sub("", unicodedata.normalize("NFC", raw.replace("\r\n", "\n")))
        if self.pre_depth:
            self.builder.append(cleaned)
            return
        words = cleaned.split()
        if not words:
            self.pending_space = self.pending_space or bool(cleaned)
            return
        if (self.pending_space or cleaned[0].isspace()) and self.builder.last not in ("", "\n", " "):
            self.builder.append(" ")
        self.builder.append(" ".join(words))
        self.pending_space = cleaned[-1].isspace()

    def _break(self, newlines: int) -> None:
        self.pending_space = False
        self.builder.ensure_newlines(newlines)
