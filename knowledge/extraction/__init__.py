"""Document bytes → text with page and section offsets. One module per format; this module only dispatches.

Every refusal is a ``DocumentRejected`` whose ``str()`` tells a staff member what is wrong with the file.
"""

from __future__ import annotations

from collections.abc import Callable

from knowledge.extraction.base import (
    DocumentRejected,
    ExtractedDocument,
    ExtractionError,
    PageSpan,
    SectionSpan,
    UnsupportedFileType,
)
from knowledge.extraction.detect import CONTENT_TYPES, DOCX, HTML, MARKDOWN, PDF, TEXT, detect_content_type
from knowledge.extraction.docx import extract_docx
from knowledge.extraction.html import extract_html
from knowledge.extraction.markdown import extract_markdown
from knowledge.extraction.pdf import PageReader, extract_pdf
from knowledge.extraction.text import extract_text

__all__ = [
    "CONTENT_TYPES",
    "DocumentRejected",
    "ExtractedDocument",
    "ExtractionError",
    "PageReader",
    "PageSpan",
    "SectionSpan",
    "UnsupportedFileType",
    "detect_content_type",
    "extract",
]


_READERS: dict[str, Callable[..., ExtractedDocument]] = {
    TEXT: extract_text,
    MARKDOWN: extract_markdown,
    HTML: extract_html,
    DOCX: extract_docx,
}


def extract(
    data: bytes, content_type: str, *, max_pages: int, max_chars: int, ocr: PageReader | None = None
) -> ExtractedDocument:
    """Text, pages and sections of a file whose type ``detect_content_type`` decided; raises ``DocumentRejected``.

    ``ocr`` reads PDF pages that have no text layer; without it such pages stay empty.
    """
    if not data:
        raise UnsupportedFileType("The file is empty (0 bytes).")
    if content_type == PDF:
        return extract_pdf(data, max_pages=max_pages, max_chars=max_chars, ocr=ocr)
    reader = _READERS.get(content_type)
    if reader is None:
        raise UnsupportedFileType(f"Files of type {content_type!r} are not supported.")
    return reader(data, max_chars=max_chars)
