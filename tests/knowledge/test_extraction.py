from __future__ import annotations

import io
import zipfile

import docx
import pytest

from knowledge.extraction import (
    DocumentRejected,
    ExtractedDocument,
    ExtractionError,
    UnsupportedFileType,
    detect_content_type,
    extract,
)
from knowledge.extraction import pdf as pdf_module
from knowledge.extraction.detect import DOCX, HTML, MARKDOWN, PDF, TEXT
from tests.knowledge import pdf_factory

LIMITS = {"max_pages": 50, "max_chars": 1_000_000}
ENGLISH = "The cooling unit is inspected on the first Monday of every month."
KOREAN = "냉각 장치는 매달 첫째 주 월요일에 점검합니다. 필터 교체 주기는 석 달입니다."


def read(data: bytes, filename: str = "", **limits: int) -> ExtractedDocument:
    return extract(data, detect_content_type(data, filename), **{**LIMITS, **limits})


def make_docx(build) -> bytes:
    document = docx.Document()
    build(document)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


# --- detection -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "filename", "expected"),
    [
        (pdf_factory.make_pdf([ENGLISH]), "notes.txt", PDF),
        (b"Just a note.\nSecond line.", "notes.md.pdf", TEXT),
        (b"# Title\n\nSome [link](https://example.com).", "notes.txt", MARKDOWN),
        (b"plain words without structure", "readme.md", MARKDOWN),
        (b"<!DOCTYPE html><html><body><p>Hi</p></body></html>", "page.txt", HTML),
        (b"  <div><p>Fragment</p></div>", "fragment", HTML),
        ("\ufeffUTF-8 with a byte order mark".encode(), "", TEXT),
        ("UTF-16 텍스트 파일".encode("utf-16"), "", TEXT),
        (b"MZ Corp quarterly report", "", TEXT),
        (b"A PDF starts with %PDF-1.7 and then objects.", "about-pdf.txt", TEXT),
    ],
)
def test_content_type_is_decided_by_bytes_not_name(data, filename, expected):
    assert detect_content_type(data, filename) == expected


def test_docx_is_detected_from_its_zip_contents():
    data = make_docx(lambda document: document.add_paragraph("hello"))
    assert detect_content_type(data, "report.pdf") == DOCX


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (pdf_factory.make_empty_bytes(), "The file is empty (0 bytes)."),
        (pdf_factory.make_elf_bytes(), "This file is a Windows/Linux executable (ELF), not a document."),
        (pdf_factory.make_png_bytes(), "PNG images are not supported (no OCR)."),
        (b"\x00\x01\x02\x03binary\xff\xfe\x00junk" * 10, "binary data in a format we do not recognise"),
        (b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "GIF images are not supported"),
    ],
)
def test_unsupported_files_are_refused_with_a_readable_reason(data, reason):
    with pytest.raises(UnsupportedFileType, match=r"Supported: PDF|no OCR|empty") as caught:
        detect_content_type(data, "document.pdf")
    assert reason in str(caught.value)


def test_zip_and_spreadsheet_archives_are_refused_by_kind():
    plain_zip, sheet = io.BytesIO(), io.BytesIO()
    with zipfile.ZipFile(plain_zip, "w") as archive:
        archive.writestr("notes.txt", "hello")
    with zipfile.ZipFile(sheet, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
    with pytest.raises(UnsupportedFileType, match="ZIP archives are not supported"):
        detect_content_type(plain_zip.getvalue())
    with pytest.raises(UnsupportedFileType, match="Excel spreadsheets are not supported"):
        detect_content_type(sheet.getvalue())


def test_refusals_share_one_base_class_for_callers():
    assert issubclass(UnsupportedFileType, DocumentRejected)
    assert issubclass(ExtractionError, DocumentRejected)


# --- PDF -----------------------------------------------------------------------------------------------------


def test_pdf_pages_have_exact_offsets_and_one_based_numbers():
    pages = [f"Page one.\n{ENGLISH}", KOREAN, "Third page, short."]
    doc = read(pdf_factory.make_pdf(pages))
    assert doc.page_count == 3
    assert [page.number for page in doc.pages] == [1, 2, 3]
    for page, source in zip(doc.pages, pages, strict=True):
        assert doc.text[page.start : page.end] == source
    assert doc.text == "\n\n".join(pages)


def test_korean_and_english_on_one_pdf_page_survive_extraction():
    page = f"제품 안내서 Product guide\n{KOREAN} {ENGLISH}\n요약: CPU 97% (peak) 😀"
    doc = read(pdf_factory.make_pdf([page]))
    assert doc.text == page


def test_blank_pdf_pages_keep_their_numbers_and_empty_spans():
    doc = read(pdf_factory.make_pdf([ENGLISH, "", KOREAN]))
    assert doc.pages[1].start == doc.pages[1].end
    assert doc.text[doc.pages[2].start : doc.pages[2].end] == KOREAN


def test_encrypted_pdf_is_refused_as_password_protected():
    with pytest.raises(ExtractionError) as caught:
        read(pdf_factory.make_encrypted_pdf([ENGLISH]))
    assert str(caught.value) == "The PDF is password-protected; remove the password and upload it again."


def test_truncated_pdf_is_refused_as_damaged():
    with pytest.raises(ExtractionError, match=r"^The PDF is damaged or not a real PDF: \S"):
        read(pdf_factory.make_truncated_pdf([ENGLISH] * 3))


def test_garbage_that_claims_to_be_a_pdf_is_refused_as_damaged():
    with pytest.raises(ExtractionError, match=r"^The PDF is damaged or not a real PDF"):
        extract(b"%PDF-1.7\n" + bytes(range(256)) * 20, PDF, **LIMITS)


def test_image_only_pdf_without_ocr_is_refused_as_scanned():
    with pytest.raises(ExtractionError) as caught:
        read(pdf_factory.make_image_only_pdf(2))
    assert str(caught.value) == (
        "No text could be extracted: the PDF seems to be scanned images and OCR is turned off on this server."
    )


def test_pdf_over_the_page_limit_is_refused_with_both_numbers():
    with pytest.raises(ExtractionError) as caught:
        read(pdf_factory.make_pdf(["x"] * 6), max_pages=5)
    assert str(caught.value) == "The PDF has 6 pages; the limit is 5."


def test_pdf_text_over_the_character_limit_stops_early():
    with pytest.raises(ExtractionError, match="more than 1,000 characters"):
        read(pdf_factory.make_pdf([ENGLISH * 10] * 20), max_chars=1_000)


@pytest.mark.timeout(60)
def test_decompression_bomb_fails_fast_with_a_readable_reason():
    bomb = pdf_factory.make_decompression_bomb_pdf()  # ~120 KB inflating to 120 MB
    assert len(bomb) < 200_000
    with pytest.raises(ExtractionError) as caught:
        read(bomb)
    assert str(caught.value).startswith("Page 1 of the PDF could not be read: a compressed stream expands beyond")
    assert f"{pdf_module.STREAM_LIMIT_BYTES // (1024 * 1024)} MB safety limit" in str(caught.value)


def test_pdf_stream_below_the_cap_is_still_read():
    doc = read(pdf_factory.make_decompression_bomb_pdf(2 * 1024 * 1024))
    assert doc.text == "boom"


# --- Markdown, HTML, plain text ------------------------------------------------------------------------------


def test_markdown_headings_become_section_paths_with_exact_offsets():
    source = (
        "Intro line.\n\n# Install\n\nGeneral steps.\n\n## Linux\n\nUse apt.\n\n"
        "## 윈도우\n\n설치 파일을 실행하세요.\n\nUsage\n=====\n\nRun it."
    )
    doc = read(source.encode(), "guide.md")
    assert doc.text == source
    paths = [section.path for section in doc.sections]
    assert paths == [("Install",), ("Install", "Linux"), ("Install", "윈도우"), ("Usage",)]
    assert doc.text[doc.sections[1].start :].startswith("## Linux")
    assert doc.text[doc.sections[2].start : doc.sections[2].end].strip() == "## 윈도우\n\n설치 파일을 실행하세요."
    assert doc.sections[-1].end == len(doc.text)


def test_markdown_heading_titles_are_plain_text():
    doc = read(b"# Install `uv` on **Linux**\n\ntext", "a.md")
    assert doc.sections[0].path == ("Install uv on Linux",)


def test_html_keeps_visible_text_and_drops_scripts_styles_and_head():
    page = """<!doctype html><html><head><title>Hidden title</title><style>p { color: red }</style></head>
    <body><h1>Guide</h1><p>Hello   <b>bold</b>
    world</p><script>var secret = 1;</script><noscript>enable js</noscript><template><p>tpl</p></template>
    <h2>Steps</h2><ul><li>one</li><li>둘</li></ul><table><tr><th>Key</th><td>Value</td></tr></table>
    <!-- a comment --><div hidden>invisible</div></body></html>"""
    doc = read(page.encode())
    assert doc.text == "Guide\n\nHello bold world\n\nSteps\n\none\n둘\n\nKey | Value"
    assert [section.path for section in doc.sections] == [("Guide",), ("Guide", "Steps")]
    assert doc.text[doc.sections[1].start : doc.sections[1].end].startswith("Steps")


def test_plain_text_is_normalised_without_losing_indentation():
    data = "e\u0301te\u0301\r\n    indented\x07 line   with  spaces\r\n\r\n\r\n\r\nend".encode()
    doc = read(data)
    assert doc.text == "été\n    indented line   with  spaces\n\nend"
    assert doc.pages == [] and doc.sections == [] and doc.page_count is None


def test_text_with_no_visible_characters_is_refused():
    with pytest.raises(ExtractionError, match="No text could be extracted"):
        read(b"<html><body><script>x()</script></body></html>")
    with pytest.raises(ExtractionError, match="No text could be extracted"):
        read(b"   \n\n\t  ")


def test_text_over_the_character_limit_is_refused():
    with pytest.raises(ExtractionError, match="more than 100 characters"):
        read(b"word " * 100, max_chars=100)


# --- DOCX ----------------------------------------------------------------------------------------------------


def test_docx_headings_and_tables_are_extracted_in_order():
    def build(document):
        document.add_paragraph("Preface text.")
        document.add_heading("설치", level=1)
        document.add_paragraph("Install steps.")
        document.add_heading("Linux", level=2)
        table = document.add_table(rows=2, cols=2)
        for row, cells in enumerate([("Name", "값"), ("pgvector", "0.8")]):
            for column, text in enumerate(cells):
                table.cell(row, column).text = text
        document.add_paragraph("After the table.")

    doc = read(make_docx(build), "report.docx")
    table = "Name | 값\npgvector | 0.8"
    assert doc.text == f"Preface text.\n\n설치\n\nInstall steps.\n\nLinux\n\n{table}\n\nAfter the table."
    assert [section.path for section in doc.sections] == [("설치",), ("설치", "Linux")]
    linux = doc.sections[1]
    assert doc.text[linux.start : linux.end] == f"Linux\n\n{table}\n\nAfter the table."


def test_docx_merged_cells_are_not_repeated():
    def build(document):
        table = document.add_table(rows=1, cols=3)
        table.cell(0, 0).merge(table.cell(0, 1)).text = "merged"
        table.cell(0, 2).text = "single"

    assert read(make_docx(build)).text == "merged | single"


def test_damaged_docx_is_refused_as_not_a_word_file():
    broken = io.BytesIO()
    with zipfile.ZipFile(broken, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<not-closed")
    with pytest.raises(ExtractionError, match=r"^The Word file is damaged or not a real \.docx file: "):
        read(broken.getvalue())


def test_empty_docx_is_refused():
    with pytest.raises(ExtractionError, match="No text could be extracted"):
        read(make_docx(lambda document: None))
