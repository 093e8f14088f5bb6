"""Decide what a file is from its bytes; the filename only breaks the tie between Markdown and plain text."""

from __future__ import annotations

import io
import re
import zipfile

import filetype

from knowledge.extraction.base import SUPPORTED, UnsupportedFileType

PDF = "application/pdf"
TEXT = "text/plain"
MARKDOWN = "text/markdown"
HTML = "text/html"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
CONTENT_TYPES = (PDF, TEXT, MARKDOWN, HTML, DOCX)

_PDF_HEADER_WINDOW = 1024
_SNIFF_CHARS = 64 * 1024

_ZIP_KINDS = frozenset({"docx", "xlsx", "pptx", "zip", "epub", "odt", "ods", "odp"})
_EXECUTABLES = {
    "elf": "a Windows/Linux executable (ELF)",
    "exe": "a Windows/Linux executable (Windows EXE/DLL)",
    "dex": "an Android executable (DEX)",
    "swf": "a Flash program (SWF)",
    "wasm": "a WebAssembly program",
    "class": "a Java class file",
    "crx": "a browser extension",
    "deb": "a software package (DEB)",
    "rpm": "a software package (RPM)",
}
_OFFICE_OTHER = {
    "doc": "Old Word (.doc) files are not supported; open it in Word and save it as .docx or PDF.",
    "xls": "Excel spreadsheets are not supported; export the sheet as PDF or save the text as a document.",
    "xlsx": "Excel spreadsheets are not supported; export the sheet as PDF or save the text as a document.",
    "ppt": "PowerPoint presentations are not supported; export the slides as PDF.",
    "pptx": "PowerPoint presentations are not supported; export the slides as PDF.",
    "odt": "OpenDocument text files are not supported; save it as .docx or PDF.",
    "ods": "OpenDocument spreadsheets are not supported; export it as PDF.",
    "odp": "OpenDocument presentations are not supported; export it as PDF.",
    "rtf": "RTF files are not supported; save it as .docx or PDF.",
    "epub": "EPUB e-books are not supported; convert it to PDF.",
}

_HTML_START = re.compile(r"\A(?:\s|<\?xml[^>]*>|<!--.*?-->)*<(?:!doctype\s+html|html|head|body)\b", re.I | re.S)
_HTML_TAG = re.compile(r"<(?:p|div|h[1-6]|table|ul|ol|span|a|title|meta|script|style|br|section|article)\b[^>]*>", re.I)
_MARKDOWN_STRONG = re.compile(r"^(?:#{1,6}[ \t]+\S|```|~~~)|\[[^\]\n]+\]\([^)\s]+\)", re.M)
_MARKDOWN_LIST = re.compile(r"^[ \t]*(?:[-*+]|\d{1,3}[.)])[ \t]+\S", re.M)
_MARKDOWN_SETEXT = re.compile(r"^\S[^\n]*\n(?:=+|-+)[ \t]*$", re.M)


def detect_content_type(data: bytes, filename: str = "") -> str:
    """One of ``CONTENT_TYPES`` judged by content; raises ``UnsupportedFileType`` with a staff-readable reason."""
    if not data:
        raise UnsupportedFileType("The file is empty (0 bytes).")
    if _is_pdf(data):
        return PDF
    kind = filetype.guess(data)
    if (kind is not None and kind.extension in _ZIP_KINDS) or data[:4] == b"PK\x03\x04":
        return _zip_type(data)
    # Text first: some signatures are two bytes ("MZ") that a text file may well start with, while real binary
    # formats contain NUL bytes or invalid UTF-8 and so never decode as text.
    text = decode_text(data)
    if text is not None:
        return _text_type(text, filename)
    if kind is not None:
        raise UnsupportedFileType(_binary_reason(data, kind.extension, kind.mime))
    raise UnsupportedFileType(f"This file is binary data in a format we do not recognise, not a document. {SUPPORTED}")


def _is_pdf(data: bytes) -> bool:
    if data.lstrip()[:5] == b"%PDF-":
        return True
    # Readers accept junk before the header, but a text file that merely mentions "%PDF-" is still text.
    return b"%PDF-" in data[:_PDF_HEADER_WINDOW] and decode_text(data) is None


def _binary_reason(data: bytes, extension: str, mime: str) -> str:
    if extension in _EXECUTABLES:
        return f"This file is {_EXECUTABLES[extension]}, not a document. {SUPPORTED}"
    if extension in _OFFICE_OTHER:
        return _OFFICE_OTHER[extension]
    if mime.startswith("image/"):
        return f"{extension.upper()} images are not supported (no OCR). Upload the text as a PDF or document."
    if mime.startswith(("audio/", "video/")):
        return f"Audio and video files ({extension.upper()}) are not supported. {SUPPORTED}"
    if mime.startswith("font/") or extension in ("woff", "woff2", "ttf", "otf"):
        return f"Font files ({extension.upper()}) are not documents. {SUPPORTED}"
    if filetype.is_archive(data):
        return f"{extension.upper()} archives are not supported; unpack it and upload the documents inside one by one."
    return f"{extension.upper()} files are not supported. {SUPPORTED}"


def _zip_type(data: bytes) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise UnsupportedFileType(f"The file looks like a ZIP or Word file but is damaged ({exc}).") from exc
    if "word/document.xml" in names:
        return DOCX
    if any(name.startswith("xl/") for name in names):
        raise UnsupportedFileType(_OFFICE_OTHER["xlsx"])
    if any(name.startswith("ppt/") for name in names):
        raise UnsupportedFileType(_OFFICE_OTHER["pptx"])
    if "mimetype" in names:
        raise UnsupportedFileType("OpenDocument and EPUB files are not supported; save it as .docx or PDF.")
    raise UnsupportedFileType(
        f"ZIP archives are not supported; unpack it and upload the documents inside one by one. {SUPPORTED}"
    )


def decode_text(data: bytes) -> str | None:
    """The text of ``data`` if it is UTF-8 (BOM allowed) or BOM-marked UTF-16 and free of binary bytes, else None."""
    utf16 = data.startswith((b"\xff\xfe", b"\xfe\xff"))
    try:
        text = data.decode("utf-16") if utf16 else data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    return None if _looks_binary(text) else text


def _looks_binary(text: str) -> bool:
    if "\x00" in text:
        return True
    # A stray control character happens in real text files (copied from terminals, old editors); many do not.
    sample = text[:_SNIFF_CHARS]
    controls = sum(1 for char in sample if char < " " and char not in "\t\n\r\x0c\x0b\x1b")
    return controls > max(8, len(sample) // 100)


def _text_type(text: str, filename: str) -> str:
    head = text[:_SNIFF_CHARS]
    if _HTML_START.match(head) or (head.lstrip().startswith("<") and len(_HTML_TAG.findall(head[:4096])) >= 2):
        return HTML
    if filename.lower().endswith((".md", ".markdown")):
        return MARKDOWN
    if _MARKDOWN_STRONG.search(head) or _MARKDOWN_SETEXT.search(head) or len(_MARKDOWN_LIST.findall(head[:8192])) >= 2:
        return MARKDOWN
    return TEXT
