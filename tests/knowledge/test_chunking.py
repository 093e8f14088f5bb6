from __future__ import annotations

import random
import re
from itertools import pairwise

import pytest

from knowledge.chunking import ChunkDraft, chunk_document, sentence_windows
from knowledge.extraction import ExtractedDocument, PageSpan, extract
from protostar.tokens import count_tokens
from tests.knowledge import pdf_factory

ENGLISH = [
    "The cooling unit must be inspected every month.",
    "Replace the filter when the pressure drops below two bar.",
    "Operators log each inspection in the maintenance book.",
    "Never open the panel while the device is powered!",
    "Why does the alarm sound at night?",
]
KOREAN = [
    "냉각 장치는 매달 첫째 주 월요일에 점검합니다.",
    "필터 교체 주기는 석 달입니다.",
    "점검 결과는 정비 일지에 기록해야 해요.",
    "전원이 켜진 상태에서 패널을 열지 마십시오.",
    "왜 밤에 경보가 울리나요?",
]


def paragraphs(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        sentences = rng.choice([ENGLISH, KOREAN])
        out.append(" ".join(rng.choice(sentences) for _ in range(rng.randint(1, 14))))
    return out


def check_invariants(doc: ExtractedDocument, chunks: list[ChunkDraft], target: int) -> None:
    assert [chunk.ordinal for chunk in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        assert chunk.text == doc.text[chunk.char_start : chunk.char_end]
        assert chunk.text == chunk.text.strip()
        assert chunk.token_count == count_tokens(chunk.text) <= target
    covered = set()
    for chunk in chunks:
        covered.update(range(chunk.char_start, chunk.char_end))
    missing = [index for index, char in enumerate(doc.text) if not char.isspace() and index not in covered]
    assert missing == [], "every visible character belongs to a chunk"
    starts = [chunk.char_start for chunk in chunks]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)


def test_chunks_point_exactly_into_the_text_and_stay_within_the_target():
    doc = ExtractedDocument(text="\n\n".join(paragraphs(1, 60)))
    chunks = chunk_document(doc, target_tokens=120, overlap_tokens=20)
    assert len(chunks) > 10
    check_invariants(doc, chunks, 120)


def test_consecutive_chunks_overlap_by_whole_trailing_sentences():
    doc = ExtractedDocument(text=" ".join(ENGLISH * 30))
    chunks = chunk_document(doc, target_tokens=100, overlap_tokens=25)
    check_invariants(doc, chunks, 100)
    for previous, chunk in pairwise(chunks):
        assert chunk.char_start < previous.char_end, "the next chunk repeats the end of the previous one"
        repeated = doc.text[chunk.char_start : previous.char_end]
        assert 0 < count_tokens(repeated) <= 25 + 2
        assert re.search(r"[.?!]\s+$", doc.text[: chunk.char_start]), "the overlap starts at a sentence start"


def test_zero_overlap_partitions_the_text():
    doc = ExtractedDocument(text="\n\n".join(paragraphs(2, 30)))
    chunks = chunk_document(doc, target_tokens=80, overlap_tokens=0)
    check_invariants(doc, chunks, 80)
    for previous, chunk in pairwise(chunks):
        assert chunk.char_start >= previous.char_end


def test_each_heading_starts_a_new_chunk_without_overlap_from_the_previous_section():
    source = (
        "# Install\n\n" + "\n\n".join(paragraphs(3, 6)) + "\n\n## Linux\n\n" + "\n\n".join(paragraphs(4, 6))
        + "\n\n## 윈도우\n\nShort section."
    )  # fmt: skip
    doc = extract(source.encode(), "text/markdown", max_pages=1, max_chars=100_000)
    chunks = chunk_document(doc, target_tokens=90, overlap_tokens=20)
    check_invariants(doc, chunks, 90)
    starts = {chunk.char_start for chunk in chunks}
    for section in doc.sections:
        assert section.start in starts
        assert not any(chunk.char_start < section.start < chunk.char_end for chunk in chunks)
    by_start = {chunk.char_start: chunk for chunk in chunks}
    assert by_start[doc.sections[1].start].section_path == ("Install", "Linux")
    assert chunks[-1].section_path == ("Install", "윈도우")
    assert chunks[-1].text == "## 윈도우\n\nShort section."
    inside_linux = [chunk for chunk in chunks if doc.sections[1].start <= chunk.char_start < doc.sections[1].end]
    assert all(chunk.section_path == ("Install", "Linux") for chunk in inside_linux)


def test_text_before_the_first_heading_has_no_section_path():
    doc = extract(b"Preface.\n\n# Body\n\nText.", "text/markdown", max_pages=1, max_chars=1000)
    chunks = chunk_document(doc, target_tokens=100, overlap_tokens=10)
    assert [(chunk.text, chunk.section_path) for chunk in chunks] == [("Preface.", ()), ("# Body\n\nText.", ("Body",))]


def test_korean_text_without_spaces_is_cut_at_character_boundaries_within_the_target():
    run = "가나다라마바사아자차카타파하" * 400  # 5,600 syllables, no space or punctuation at all
    doc = ExtractedDocument(text=f"서론입니다.\n\n{run}\n\n결론입니다.")
    chunks = chunk_document(doc, target_tokens=100, overlap_tokens=20)
    check_invariants(doc, chunks, 100)
    assert len(chunks) >= count_tokens(run) // 100
    inner = chunks[1:-1]
    assert all(count_tokens(chunk.text) >= 90 for chunk in inner[1:]), "cut chunks are filled, not tiny"
    for previous, chunk in pairwise(inner):
        assert chunk.char_start < previous.char_end


def test_korean_sentences_without_spaces_after_the_full_stop_still_split():
    sentence = "점검은매달진행한다.필터는석달마다교체한다.기록은일지에남긴다요."
    doc = ExtractedDocument(text=sentence * 40)
    chunks = chunk_document(doc, target_tokens=60, overlap_tokens=0)
    check_invariants(doc, chunks, 60)
    assert all(chunk.text.endswith(".") for chunk in chunks[:-1])


def test_a_long_sentence_without_punctuation_is_cut_between_words():
    doc = ExtractedDocument(text=" ".join(f"word{index}" for index in range(2000)))
    chunks = chunk_document(doc, target_tokens=50, overlap_tokens=10)
    check_invariants(doc, chunks, 50)
    for chunk in chunks:
        assert re.fullmatch(r"word\d+( word\d+)*", chunk.text), chunk.text


def test_chunk_page_ranges_follow_the_pdf_pages():
    pages = ["\n".join(paragraphs(seed, 3)) for seed in range(12)]
    doc = extract(pdf_factory.make_pdf(pages), "application/pdf", max_pages=20, max_chars=1_000_000)
    chunks = chunk_document(doc, target_tokens=150, overlap_tokens=20)
    check_invariants(doc, chunks, 150)
    for chunk in chunks:
        touched = [page.number for page in doc.pages if page.start < chunk.char_end and page.end > chunk.char_start]
        assert (chunk.page_start, chunk.page_end) == (min(touched), max(touched))
    assert chunks[0].page_start == 1 and chunks[-1].page_end == 12
    assert any(chunk.page_start != chunk.page_end for chunk in chunks), "some chunk spans a page break"


def test_documents_without_pages_have_no_page_numbers():
    chunks = chunk_document(ExtractedDocument(text="Hello."), target_tokens=10, overlap_tokens=2)
    assert [(chunk.page_start, chunk.page_end, chunk.token_count) for chunk in chunks] == [(None, None, 2)]


def test_empty_document_has_no_chunks():
    assert chunk_document(ExtractedDocument(text=" \n\n "), target_tokens=100, overlap_tokens=10) == []


def test_chunking_is_deterministic():
    doc = ExtractedDocument(text="\n\n".join(paragraphs(5, 40)))
    first = chunk_document(doc, target_tokens=100, overlap_tokens=20)
    assert chunk_document(doc, target_tokens=100, overlap_tokens=20) == first


def test_overlap_larger_than_half_the_target_is_capped_so_chunking_advances():
    doc = ExtractedDocument(text=" ".join(ENGLISH * 10))
    chunks = chunk_document(doc, target_tokens=40, overlap_tokens=400)
    check_invariants(doc, chunks, 40)


def test_invalid_target_is_rejected():
    with pytest.raises(ValueError, match="target_tokens"):
        chunk_document(ExtractedDocument(text="x"), target_tokens=0, overlap_tokens=0)


@pytest.mark.timeout(30)
def test_three_hundred_pages_chunk_in_linear_time():
    texts = ["\n".join(paragraphs(seed, 4)) for seed in range(300)]
    spans, offset = [], 0
    for number, text in enumerate(texts, start=1):
        spans.append(PageSpan(number=number, start=offset, end=offset + len(text)))
        offset += len(text) + 2
    doc = ExtractedDocument(text="\n\n".join(texts), page_count=300, pages=spans)
    chunks = chunk_document(doc, target_tokens=300, overlap_tokens=40)
    check_invariants(doc, chunks, 300)
    assert chunks[-1].page_end == 300


def test_sentence_windows_cover_every_sentence_once_in_order_within_the_target():
    text = " ".join(paragraphs(seed=5, count=1)) + "\n- a list item\n- another item"
    windows = sentence_windows(text, target_tokens=24)
    assert len(windows) > 1
    assert [start for start, _ in windows] == sorted({start for start, _ in windows})
    for (_, end), (next_start, _) in pairwise(windows):
        assert end <= next_start and text[end:next_start].strip() == ""
    assert "".join(text[s:e] for s, e in windows).replace(" ", "").replace("\n", "") == re.sub(r"\s", "", text)
    for start, end in windows:
        window = text[start:end]
        assert window == window.strip() and count_tokens(window) <= 24  # every sample sentence is shorter


def test_a_sentence_longer_than_the_target_is_a_window_of_its_own():
    long_sentence = "The cooling unit " + "really " * 40 + "must be inspected."
    text = f"Short one. {long_sentence} Another short one."
    assert [text[s:e] for s, e in sentence_windows(text, target_tokens=16)] == [
        "Short one.",
        long_sentence,
        "Another short one.",
    ]


def test_korean_sentences_and_lines_break_windows():
    text = "냉각 장치는 매달 점검합니다. 필터 교체 주기는 석 달입니다.\n| 항목 | 주기 |"
    assert [text[s:e] for s, e in sentence_windows(text, target_tokens=12)] == [
        "냉각 장치는 매달 점검합니다.",
        "필터 교체 주기는 석 달입니다.",
        "| 항목 | 주기 |",
    ]


def test_empty_text_has_no_windows():
    assert sentence_windows("", target_tokens=64) == []
    assert sentence_windows("  \n ", target_tokens=64) == []
