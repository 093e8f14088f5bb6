"""Plain text: decoded as the detector decoded it, normalised, no pages or sections."""

from __future__ import annotations

from knowledge.extraction.base import ExtractedDocument, ExtractionError, no_text, normalize_text, too_much_text
from knowledge.extraction.detect import decode_text


def read_text(data: bytes, *, max_chars: int) -> str:
    """Decoded, normalised text; raises before normalising a text that is already over the limit."""
    # A UTF-8 file has at least one byte per character: only then can the decoded text be over the limit.
    if len(data) > max_chars * 4 + 4:
        raise too_much_text(max_chars)
    text = decode_text(data)
    if text is None:
        raise ExtractionError("The file is not valid UTF-8 or UTF-16 text.")
    if len(text) > max_chars:
        raise too_much_text(max_chars)
    return normalize_text(text, collapse_spaces=False)


def extract_text(data: bytes, *, max_chars: int) -> ExtractedDocument:
    text = read_text(data, max_chars=max_chars)
    if not text.strip():
        raise no_text()
    return ExtractedDocument(text=text)
