"""Word (.docx): body paragraphs and tables in document order; "Heading N" styles become sections."""

from __future__ import annotations

import io
import re
import zipfile

import docx
from docx.document import Document as WordDocument
from docx.opc.exceptions import PackageNotFoundError
from docx.table import Table
from docx.text.paragraph import Paragraph
from lxml import etree

from knowledge.extraction.base import (
    ExtractedDocument,
    ExtractionError,
    SectionTracker,
    TextBuilder,
    no_text,
    normalize_text,
)

# python-docx inflates whole parts into memory: refuse archives that unpack to more than this before trying.
DOCX_MAX_UNPACKED_BYTES = 200 * 1024 * 1024
_HEADING_STYLE = re.compile(r"^heading\s*([1-9])$", re.I)
_BROKEN = (
    PackageNotFoundError,
    zipfile.BadZipFile,
    etree.XMLSyntaxError,
    KeyError,
    ValueError,
    TypeError,
    AttributeError,
    IndexError,
    OSError,
    EOFError,
)


def extract_docx(data: bytes, *, max_chars: int) -> ExtractedDocument:
    document = _open(data)
    builder, sections = TextBuilder(max_chars), SectionTracker()
    try:
        for block in document.iter_inner_content():
            if isinstance(block, Paragraph):
                _paragraph(block, builder, sections)
            elif isinstance(block, Table):
                _table(block, builder)
    except _BROKEN as exc:
        raise _damaged(exc) from exc
    text = builder.text()
    if not text.strip():
        raise no_text()
    return ExtractedDocument(text=text, sections=sections.finish(len(text)))


def _open(data: bytes) -> WordDocument:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
        if unpacked > DOCX_MAX_UNPACKED_BYTES:
            raise ExtractionError(
                f"The Word file unpacks to {unpacked // (1024 * 1024):,} MB, over the "
                f"{DOCX_MAX_UNPACKED_BYTES // (1024 * 1024)} MB safety limit; it is probably not a normal document."
            )
        return docx.Document(io.BytesIO(data))
    except _BROKEN as exc:
        raise _damaged(exc) from exc


def _damaged(exc: Exception) -> ExtractionError:
    detail = str(exc).strip() or type(exc).__name__
    return ExtractionError(f"The Word file is damaged or not a real .docx file: {detail[:200]}")


def _paragraph(paragraph: Paragraph, builder: TextBuilder, sections: SectionTracker) -> None:
    text = normalize_text(paragraph.text)
    if not text:
        return
    builder.ensure_newlines(2)
    level = _heading_level(paragraph)
    if level:
        sections.heading(level, text, builder.length)
    builder.append(text)


def _heading_level(paragraph: Paragraph) -> int | None:
    # Custom styles ("My Heading") are usually based on a built-in heading: follow the chain a few steps.
    style = paragraph.style
    for _ in range(4):
        if style is None:
            return None
        match = _HEADING_STYLE.match(style.name or "") or _HEADING_STYLE.match(style.style_id or "")
        if match:
            return int(match.group(1))
        style = style.base_style
    return None


def _table(table: Table, builder: TextBuilder) -> None:
    rows = []
    for row in table.rows:
        seen: set[int] = set()
        cells = []
        for cell in row.cells:
            # A merged cell is returned once per grid column it spans.
            if id(cell._tc) in seen:
                continue
            seen.add(id(cell._tc))
            text = " ".join(normalize_text(cell.text).split())
            if text:
                cells.append(text)
        if cells:
            rows.append(" | ".join(cells))
    if rows:
        builder.ensure_newlines(2)
        builder.append("\n".join(rows))
