"""PDF: text of every page via pypdf, pages joined by a blank line, page offsets recorded.

Pages without a text layer that paint an image (scans) are handed to an optional ``PageReader`` (OCR, supplied by
ingestion), so this module stays free of engines, storage and progress.
"""

from __future__ import annotations

import io
import logging
import struct
import warnings
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from pypdf import PdfReader, apply_configuration
from pypdf.errors import DependencyError, FileNotDecryptedError, LimitReachedError, PyPdfError

from knowledge.extraction.base import ExtractedDocument, ExtractionError, PageSpan, normalize_text, too_much_text

# pypdf's own cap is 75 MB per decoded stream, which bounds memory but not CPU (parsing a content stream near that
# cap takes many seconds of CPU). No real page needs 20 MB of drawing instructions; a larger one is treated as hostile.
STREAM_LIMIT_BYTES = 20 * 1024 * 1024
PAGE_SEPARATOR = "\n\n"
_LIMITS = {
    "zlib_maximum_output_length": STREAM_LIMIT_BYTES,
    "lzw_maximum_output_length": STREAM_LIMIT_BYTES,
    "run_length_maximum_output_length": STREAM_LIMIT_BYTES,
    "brotli_maximum_output_length": STREAM_LIMIT_BYTES,
    "array_based_stream_maximum_output_length": STREAM_LIMIT_BYTES,
}
# pypdf raises plain Python errors as well as its own on malformed input.
_BROKEN = (
    PyPdfError,
    ValueError,
    KeyError,
    TypeError,
    AttributeError,
    IndexError,
    AssertionError,
    RecursionError,
    OverflowError,
    ZeroDivisionError,
    UnicodeError,
    zlib.error,
    struct.error,
)
PASSWORD_PROTECTED = "The PDF is password-protected; remove the password and upload it again."
SCANNED = "No text could be extracted: the PDF seems to be scanned images and OCR is turned off on this server."
SCANNED_UNREADABLE = "No text could be extracted: the PDF seems to be scanned images and OCR found no readable text."
# Reads the given 1-based page numbers (those without a text layer) and returns their text by number.
PageReader = Callable[[list[int]], dict[int, str]]


def extract_pdf(data: bytes, *, max_pages: int, max_chars: int, ocr: PageReader | None = None) -> ExtractedDocument:
    with _quiet_pypdf(), apply_configuration(**_LIMITS):
        reader = _open(data)
        page_count = _page_count(reader, max_pages)
        texts = _page_texts(reader, page_count, max_chars)
        image_pages = [number for number, text in enumerate(texts, start=1) if not text and _has_images(reader, number)]
    if ocr is not None and image_pages:
        for number, text in ocr(image_pages).items():
            texts[number - 1] = normalize_text(text)
        if sum(len(text) for text in texts) + len(PAGE_SEPARATOR) * (len(texts) - 1) > max_chars:
            raise too_much_text(max_chars)
    if not any(texts):
        if image_pages:
            raise ExtractionError(SCANNED if ocr is None else SCANNED_UNREADABLE)
        raise ExtractionError("No text could be extracted: the PDF is blank.")
    return _assemble(texts)


@contextmanager
def _quiet_pypdf() -> Iterator[None]:
    """pypdf warns loudly about every recoverable quirk of real-world files; those are not our errors."""
    logger = logging.getLogger("pypdf")
    previous = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(previous)


def _open(data: bytes) -> PdfReader:
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        # Many PDFs are encrypted only to restrict printing, with an empty user password: those are readable.
        if reader.is_encrypted and not reader.decrypt(""):
            raise ExtractionError(PASSWORD_PROTECTED)
        return reader
    except FileNotDecryptedError as exc:
        raise ExtractionError(PASSWORD_PROTECTED) from exc
    except DependencyError as exc:
        raise ExtractionError("The PDF uses an encryption method this server cannot read.") from exc
    except LimitReachedError as exc:
        raise _over_limit(None) from exc
    except _BROKEN as exc:
        raise _damaged(exc) from exc


def _page_count(reader: PdfReader, max_pages: int) -> int:
    try:
        count = len(reader.pages)
    except FileNotDecryptedError as exc:
        raise ExtractionError(PASSWORD_PROTECTED) from exc
    except _BROKEN as exc:
        raise _damaged(exc) from exc
    if count == 0:
        raise ExtractionError("The PDF is damaged or not a real PDF: it has no pages.")
    if count > max_pages:
        raise ExtractionError(f"The PDF has {count:,} pages; the limit is {max_pages:,}.")
    return count


def _page_texts(reader: PdfReader, page_count: int, max_chars: int) -> list[str]:
    texts: list[str] = []
    total = 0
    for index in range(page_count):
        try:
            raw = reader.pages[index].extract_text()
        except FileNotDecryptedError as exc:
            raise ExtractionError(PASSWORD_PROTECTED) from exc
        except LimitReachedError as exc:
            raise _over_limit(index + 1) from exc
        except _BROKEN as exc:
            raise _damaged(exc, page=index + 1) from exc
        text = normalize_text(raw or "")
        total += len(text) + len(PAGE_SEPARATOR)
        # Checked per page so a huge document stops early instead of being built first.
        if total - len(PAGE_SEPARATOR) > max_chars:
            raise too_much_text(max_chars)
        texts.append(text)
    return texts


def _has_images(reader: PdfReader, number: int) -> bool:
    try:
        resources = reader.pages[number - 1].get("/Resources") or {}
        return bool(resources.get("/XObject"))
    except _BROKEN:
        return False


def _assemble(texts: list[str]) -> ExtractedDocument:
    pages: list[PageSpan] = []
    offset = 0
    for number, text in enumerate(texts, start=1):
        if number > 1:
            offset += len(PAGE_SEPARATOR)
        pages.append(PageSpan(number=number, start=offset, end=offset + len(text)))
        offset += len(text)
    return ExtractedDocument(text=PAGE_SEPARATOR.join(texts), page_count=len(texts), pages=pages)


def _damaged(exc: Exception, *, page: int | None = None) -> ExtractionError:
    detail = " ".join(str(exc).split()) or type(exc).__name__
    where = f" (page {page})" if page else ""
    return ExtractionError(f"The PDF is damaged or not a real PDF: {detail[:200]}{where}")


def _over_limit(page: int | None) -> ExtractionError:
    where = f"Page {page} of the PDF" if page else "The PDF"
    return ExtractionError(
        f"{where} could not be read: a compressed stream expands beyond the "
        f"{STREAM_LIMIT_BYTES // (1024 * 1024)} MB safety limit. The file may be malicious or badly generated."
    )
