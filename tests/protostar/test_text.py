"""Text handling shared by search, answers and memory: scripts, language, sentences, terms (Korean and English)."""

from __future__ import annotations

from protostar.text import (
    detect_language,
    is_hangul,
    keyword_terms,
    match_terms,
    sentence_terms,
    split_pieces,
    split_sentences,
    topical_terms,
)


def test_match_terms_use_bigrams_for_korean_and_drop_english_stopwords():
    assert match_terms("What is the refund policy?") == {"refund", "policy"}
    assert match_terms("환불은") == {"환불", "불은"}
    assert match_terms("Please explain the refunds") == {"refund"}


def test_sentence_terms_add_single_syllables_so_one_syllable_words_match():
    assert {"돈", "환불"} <= sentence_terms("돈을 환불합니다")


def test_keyword_terms_split_cjk_into_bigrams_and_latin_into_lowercase_words():
    assert keyword_terms("XR-7710 검색은") == ["xr", "7710", "검색", "색은"]
    assert keyword_terms("法") == ["法"]


def test_topical_terms_drop_question_words_unless_nothing_else_is_left():
    assert topical_terms("how long must a password be") == ["long", "must", "password"]
    assert topical_terms("what is it") == ["what", "is", "it"]
    assert topical_terms("비밀번호 비밀번호 길이") == ["비밀", "밀번", "번호", "길이"]


def test_sentences_split_after_latin_and_cjk_punctuation_and_at_line_breaks():
    text = "First one. 두 번째입니다。 Third!\nFourth"
    assert split_sentences(text) == ["First one.", "두 번째입니다。", "Third!", "Fourth"]


def test_pieces_join_back_to_the_text():
    text = "환불은  30일 이내 refunds\n ok"
    assert "".join(split_pieces(text)) == text and split_pieces("one two") == ["one", " two"]


def test_language_is_korean_when_hangul_is_a_fifth_of_the_letters():
    assert detect_language("환불 정책 policy") == "ko"
    assert detect_language("The refund policy 환") == "en"
    assert detect_language("1234 !!") == "en"
    assert is_hangul("ㄱ") and is_hangul("한") and not is_hangul("a")
