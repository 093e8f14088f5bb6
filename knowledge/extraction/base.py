"""Shared pieces of extraction: result types, errors staff can read, text normalisation and offset bookkeeping."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

SUPPORTED = "Supported: PDF, DOCX, Markdown, HTML, plain text."


class DocumentRejected(Exception):
    """A file we will not index; ``str(exc)`` is a reason written for the staff member who uploaded it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnsupportedFileType(DocumentRejected):
    """The bytes are not a document format we read."""


class ExtractionError(DocumentRejected):
    """The format is supported but this file cannot be turned into text."""


@dataclass(frozen=True)
class PageSpan:
    """Character offsets ``[start, end)`` of one page (1-based ``number``) inside ``ExtractedDocument.text``."""

    number: int
    start: int
    end: int


@dataclass(frozen=True)
class SectionSpan:
    """Offsets of one heading section: from its heading to the next heading of any level (spans never overlap)."""

    path: tuple[str, ...]
    start: int
    end: int


@dataclass(frozen=True)
class ExtractedDocument:
    text: str
    page_count: int | None = None
    pages: list[PageSpan] = field(default_factory=list)
    sections: list[SectionSpan] = field(default_factory=list)


# Everything in Unicode's "Other, control" class except tab and newline, plus surrogates (they cannot be stored
# as UTF-8) and the BOM/zero-width no-break space, which only ever appears as an encoding artefact in documents.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufeff]")
_SPACES = re.compile(r"[ \u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]+")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")
_BLANK_LINES = re.compile(r"\n{3,}")


def normalize_text(text: str, *, collapse_spaces: bool = True) -> str:
    """NFC, ``\\n`` line ends, no control characters, at most one blank line in a row, no trailing spaces.

    ``collapse_spaces`` squeezes runs of spaces (PDF and HTML output); Markdown and plain text keep them because
    indentation carries meaning there (code blocks, nested lists).
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x0c", "\n")
    text = _CONTROL.sub("", unicodedata.normalize("NFC", text))
    if collapse_spaces:
        text = _SPACES.sub(" ", text)
    text = _TRAILING_SPACE.sub("\n", text)
    text = _BLANK_LINES.sub("\n\n", text)
    return text.strip() if collapse_spaces else text.strip("\n").rstrip()


def too_much_text(max_chars: int) -> ExtractionError:
    return ExtractionError(
        f"The document has more than {max_chars:,} characters of text; the limit is {max_chars:,}. "
        "Split it into smaller files and upload them separately."
    )


def no_text() -> ExtractionError:
    return ExtractionError("No text could be extracted from this file: it contains no readable text.")


class TextBuilder:
    """Accumulates the output text, knows the current offset, and stops as soon as ``max_chars`` is passed."""

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars
        self.parts: list[str] = []
        self.length = 0
        self.last = ""  # last character written, to decide on separators without joining

    def append(self, piece: str) -> None:
        if not piece:
            return
        self.length += len(piece)
        if self.length > self.max_chars:
            raise too_much_text(self.max_chars)
        self.parts.append(piece)
        self.last = piece[-1]

    def ensure_newlines(self, count: int) -> None:
        """End the text with at least ``count`` newlines (nothing at the very start)."""
        if not self.parts:
            return
        tail = "".join(self.parts[-count:])[-count:] if count > 1 else self.last
        have = len(tail) - len(tail.rstrip("\n"))
        if have < count:
            self.append("\n" * (count - have))

    def text(self) -> str:
        return "".join(self.parts)


class SectionTracker:
    """Turns a stream of headings (level, title, offset) into non-overlapping ``SectionSpan``s with full paths."""

    def __init__(self) -> None:
        self.stack: list[tuple[int, str]] = []
        self.open: tuple[tuple[str, ...], int] | None = None
        self.spans: list[SectionSpan] = []

    def heading(self, level: int, title: str, offset: int) -> None:
        title = " ".join(title.split())
        if not title:
            return
        self._close(offset)
        while self.stack and self.stack[-1][0] >= level:
            self.stack.pop()
        self.stack.append((level, title))
        self.open = (tuple(name for _, name in self.stack), offset)

    def finish(self, end: int) -> list[SectionSpan]:
        self._close(end)
        return self.spans

    def _close(self, end: int) -> None:
        if self.open is not None:
            path, start = self.open
            if end > start:
                self.spans.append(SectionSpan(path=path, start=start, end=end))
            self.open = None
