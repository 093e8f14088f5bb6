"""Hybrid retrieval through the one search selector: Korean and English, keywords, access control, bad queries."""

from __future__ import annotations

import math

import pytest
from django.contrib.auth.models import Group

from knowledge import search
from knowledge.ingestion import document_ingest
from knowledge.models import Document
from knowledge.search import SearchError, search_chunks
from knowledge.services import document_upload
from protostar.llm.registry import get_embedder

pytestmark = pytest.mark.django_db(transaction=True)

DOCUMENTS = {
    "pump.md": "# XR-7710 pump manual\n\nThe XR-7710 pump needs a new seal kit every 18 months. "
    "Order seal kit part number SK-4432 from the warehouse.\n",
    "vacation.md": "# 휴가 규정\n\n정규직 직원의 연차 휴가는 입사 첫해 15일이며, 3년마다 하루씩 늘어납니다. "
    "휴가 신청은 최소 일주일 전에 팀장에게 제출해야 합니다.\n",
    "security.md": "# Password policy\n\nPasswords must be at least 14 characters long and are rotated "
    "every 180 days. Multi-factor authentication is mandatory for remote access.\n",
    "cafeteria.md": "# 구내식당 안내\n\n구내식당은 평일 오전 11시 30분부터 오후 1시 30분까지 운영합니다. "
    "금요일에는 특식이 제공됩니다.\n",
    "board.md": "# Board minutes\n\nThe board approved the Busan plant expansion with a budget of 4.2 billion won.\n",
}


@pytest.fixture
def corpus(monkeypatch) -> dict[str, Document]:
    monkeypatch.setattr("knowledge.services.document_ingest_enqueue", lambda *, document_id: None)
    documents = {}
    for name, text in DOCUMENTS.items():
        outcome = document_upload(data=text.encode(), filename=name)
        documents[name] = document_ingest(document_id=outcome.document.pk)
    return documents


def _top_files(hits, n: int = 3) -> list[str]:
    return [hit.original_filename for hit in hits[:n]]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("How long must a password be?", "security.md"),
        ("연차 휴가는 며칠인가요?", "vacation.md"),
        ("점심 식당은 몇 시에 열어요?", "cafeteria.md"),
        ("How many vacation days do new employees get?", "vacation.md"),
        ("비밀번호 최소 길이", "security.md"),
    ],
    ids=["en", "ko", "ko-paraphrase", "en-question-ko-document", "ko-question-en-document"],
)
def test_korean_and_english_queries_find_the_expected_chunk(corpus, admin_user, query, expected):
    hits = search_chunks(query=query, user=admin_user, k=5)
    assert hits[0].original_filename == expected, _top_files(hits, 5)


def test_keyword_only_term_is_found_even_when_vectors_miss_it(corpus, admin_user):
    hits = search_chunks(query="SK-4432", user=admin_user, k=3)
    assert hits[0].original_filename == "pump.md"
    assert hits[0].keyword_rank == 1
    assert "SK-4432" in hits[0].snippet
    assert "<mark>SK</mark>-<mark>4432</mark>" in hits[0].snippet_html


def test_hit_carries_score_parts_title_and_snippet(corpus, admin_user):
    hit = search_chunks(query="XR-7710 seal kit", user=admin_user, k=1)[0]
    assert hit.title == "pump" and hit.document_id == corpus["pump.md"].pk
    assert hit.vector_rank is not None and hit.keyword_rank is not None
    assert hit.score > 0 and hit.snippet


def test_restricted_documents_are_invisible_without_access_and_visible_with_it(corpus, django_user_model):
    board = corpus["board.md"]
    directors = Group.objects.create(name="directors")
    board.allowed_groups.add(directors)
    outsider = django_user_model.objects.create_user("outsider", password="pw-long-enough-1")
    director = django_user_model.objects.create_user("director", password="pw-long-enough-2")
    director.groups.add(directors)

    outsider_hits = search_chunks(query="Busan plant expansion budget", user=outsider, k=10)
    assert "board.md" not in [h.original_filename for h in outsider_hits]
    assert len(outsider_hits) == 4, "k visible results still come back when the best match is filtered out"
    assert search_chunks(query="Busan plant expansion budget", user=director, k=1)[0].original_filename == "board.md"


def test_anonymous_user_gets_nothing(corpus):
    from django.contrib.auth.models import AnonymousUser

    assert search_chunks(query="password", user=AnonymousUser(), k=5) == []


def test_document_filter_limits_results(corpus, admin_user):
    hits = search_chunks(query="policy", user=admin_user, k=10, document_ids=[corpus["security.md"].pk])
    assert {h.original_filename for h in hits} == {"security.md"}


@pytest.mark.parametrize("query", ["", "   ", "?!…", "---"])
def test_empty_or_punctuation_only_queries_get_a_clear_error(corpus, admin_user, query):
    with pytest.raises(SearchError) as raised:
        search_chunks(query=query, user=admin_user, k=5)
    assert str(raised.value)


def test_very_long_query_returns_results(corpus, admin_user):
    query = ("How often is the pump seal replaced? " * 300)[:10_000]
    hits = search_chunks(query=query, user=admin_user, k=3)
    assert hits and hits[0].original_filename == "pump.md"


def _ranks(hit) -> tuple[bool, ...]:
    return tuple(rank is not None for rank in (hit.vector_rank, hit.window_rank, hit.sparse_rank, hit.keyword_rank))


@pytest.mark.parametrize(
    ("mode", "ranks"),
    [
        ("vector", (True, False, False, False)),
        ("window", (False, True, False, False)),
        ("sparse", (False, False, True, False)),
        ("keyword", (False, False, False, True)),
    ],
)
def test_single_method_modes_for_evaluation(corpus, admin_user, mode, ranks):
    hits = search_chunks(query="password length", user=admin_user, k=3, mode=mode)
    assert hits and all(_ranks(hit) == ranks for hit in hits)
    assert hits[0].original_filename == "security.md"


def test_hybrid_fuses_the_sentence_window_list(corpus, admin_user):
    hit = search_chunks(query="How often must the seal kit be replaced?", user=admin_user, k=1)[0]
    assert hit.original_filename == "pump.md" and hit.window_rank == 1


def test_window_list_can_be_turned_off(corpus, admin_user, settings):
    settings.SEARCH_WINDOW_WEIGHT = 0
    hits = search_chunks(query="password length", user=admin_user, k=3)
    assert hits and all(h.window_rank is None for h in hits)


def test_chunks_without_windows_are_still_found_by_the_chunk_lists(corpus, admin_user):
    from knowledge.models import ChunkWindow

    ChunkWindow.objects.filter(chunk__document=corpus["pump.md"]).delete()  # as ingested before windows existed
    hits = search_chunks(query="XR-7710 seal kit", user=admin_user, k=5)
    pump = next(hit for hit in hits if hit.original_filename == "pump.md")
    assert pump.vector_rank == 1 and pump.keyword_rank == 1
    assert pump.window_rank is None and pump.sparse_rank is None


@pytest.mark.parametrize("centering", [True, False])
def test_each_language_can_reach_the_top_with_and_without_centering(corpus, admin_user, settings, centering):
    settings.SEARCH_LANGUAGE_CENTERING = centering
    english = search_chunks(query="How many vacation days do new employees get?", user=admin_user, k=5)
    korean = search_chunks(query="비밀번호 최소 길이", user=admin_user, k=5)
    assert english[0].original_filename == "vacation.md" and korean[0].original_filename == "security.md"


def _unit_vector(similarity: float, axis: int) -> list[float]:
    """A unit vector whose cosine with the first basis vector is ``similarity``."""
    vector = [0.0] * 384
    vector[0], vector[axis] = similarity, math.sqrt(1 - similarity**2)
    return vector


def test_language_centering_ranks_each_language_against_its_own_average(admin_user, settings, monkeypatch):
    # The embedder scores every Korean chunk of this knowledge base close to the query (same language), while one
    # English chunk stands far above the other English ones: that one is the answer.
    from knowledge.models import Chunk
    from tests.knowledge.factories import ready_document

    document = ready_document(title="mixed", chunks=[("", f"chunk {i}") for i in range(6)])
    similarities = {0: ("ko", 0.85), 1: ("ko", 0.84), 2: ("ko", 0.83), 3: ("en", 0.80), 4: ("en", 0.5), 5: ("en", 0.5)}
    for chunk in Chunk.objects.filter(document=document):
        language, similarity = similarities[chunk.ordinal]
        Chunk.objects.filter(pk=chunk.pk).update(
            language=language, embedding=_unit_vector(similarity, chunk.ordinal + 1)
        )
    monkeypatch.setattr(type(get_embedder()), "embed_query", lambda self, text: _unit_vector(1.0, 1))
    monkeypatch.setattr(search, "_language_shares", lambda: None)  # not analyzed yet: both languages are grouped

    settings.SEARCH_LANGUAGE_CENTERING = False
    assert [h.ordinal for h in search_chunks(query="q", user=admin_user, k=6, mode="vector")][:4] == [0, 1, 2, 3]
    settings.SEARCH_LANGUAGE_CENTERING = True
    assert search_chunks(query="q", user=admin_user, k=6, mode="vector")[0].ordinal == 3


def test_a_knowledge_base_in_one_language_is_ranked_as_one_group(monkeypatch):
    monkeypatch.setattr(search, "_language_shares", lambda: {"en": 0.996, "ko": 0.004})
    assert search._language_groups() == [("", [])]
    monkeypatch.setattr(search, "_language_shares", lambda: {"en": 0.6, "ko": 0.4})
    assert [params for _, params in search._language_groups()] == [["ko"], [["ko"]]]


def _with_sparse_windows(weights: list[tuple[str, float]]):
    """A document whose chunk ``i`` is in language ``weights[i][0]`` with one window of latent-term weight
    ``weights[i][1]`` on term 0 (the query's only term, see ``_sparse_query_on_term_0``)."""
    from pgvector import SparseVector

    from knowledge.models import SPARSE_DIMENSIONS, Chunk, ChunkWindow
    from tests.knowledge.factories import ready_document

    document = ready_document(title="sparse", chunks=[("", f"sparse chunk {i}") for i in range(len(weights))])
    for chunk in Chunk.objects.filter(document=document):
        language, weight = weights[chunk.ordinal]
        Chunk.objects.filter(pk=chunk.pk).update(language=language)
        ChunkWindow.objects.create(
            chunk=chunk,
            ordinal=0,
            char_start=0,
            char_end=len(chunk.text),
            embedding=chunk.embedding,
            sparse_embedding=SparseVector({0: weight}, SPARSE_DIMENSIONS),
        )
    return document


def _sparse_query_on_term_0(monkeypatch, dense=None) -> None:
    from pgvector import SparseVector

    from knowledge.models import SPARSE_DIMENSIONS

    vector = dense if dense is not None else get_embedder().embed_query("sparse chunk")
    sparse = SparseVector({0: 1.0}, SPARSE_DIMENSIONS).to_text()
    monkeypatch.setattr(search, "query_embeddings", lambda query, **wanted: (vector, sparse))


def test_hybrid_sparse_list_scores_only_the_chunks_the_other_lists_found(admin_user, monkeypatch, settings):
    from knowledge.models import Chunk, ChunkWindow

    document = _with_sparse_windows([("en", 1.0), ("en", 2.0), ("en", 3.0)])
    # Dense similarity 0.9, 0.8, 0.1: with two candidates per list, chunk 2 (the sparse side's favourite) is in none.
    for ordinal, similarity in enumerate((0.9, 0.8, 0.1)):
        vector = _unit_vector(similarity, ordinal + 1)
        Chunk.objects.filter(document=document, ordinal=ordinal).update(embedding=vector)
        ChunkWindow.objects.filter(chunk__document=document, chunk__ordinal=ordinal).update(embedding=vector)
    _sparse_query_on_term_0(monkeypatch, dense=_unit_vector(1.0, 1))
    monkeypatch.setattr(search, "_language_shares", lambda: {"en": 1.0})
    settings.SEARCH_CANDIDATES = 2

    hits = {hit.ordinal: hit for hit in search_chunks(query="qqq", user=admin_user, k=2)}
    assert set(hits) == {0, 1}
    # Ranked among the pooled chunks only: chunk 2, the best by latent terms, takes no sparse rank.
    assert (hits[1].sparse_rank, hits[0].sparse_rank) == (1, 2)
    assert all(hit.vector_rank is not None for hit in hits.values())


def test_hybrid_sparse_list_is_centered_only_when_two_languages_are_groups(admin_user, monkeypatch):
    # Three English chunks and one Korean chunk that the sparse side likes least.
    _with_sparse_windows([("en", 3.0), ("en", 2.0), ("en", 1.0), ("ko", 0.5)])
    _sparse_query_on_term_0(monkeypatch)

    def korean_sparse_rank(shares: dict[str, float]) -> int:
        monkeypatch.setattr(search, "_language_shares", lambda: shares)
        hits = search_chunks(query="sparse chunk", user=admin_user, k=4)
        return next(hit.sparse_rank for hit in hits if hit.ordinal == 3)

    # Almost all English: one group, the Korean chunk ranks by its own score, last.
    assert korean_sparse_rank({"en": 0.996, "ko": 0.004}) == 4
    # Two groups: alone in its group it sits at that group's average, above the worst English chunk.
    assert korean_sparse_rank({"en": 0.6, "ko": 0.4}) < 4


def test_very_common_terms_of_a_large_table_are_left_out_of_the_keyword_side(monkeypatch):
    from knowledge import search

    monkeypatch.setattr(search, "_common_terms", lambda: ({"the": 0.9, "pump": 0.03, "seal": 0.001}, 100_000.0))
    assert search._distinctive(["the", "pump", "seal", "sk"]) == ["seal", "sk"]


def test_common_terms_of_a_small_knowledge_base_are_kept(monkeypatch):
    from knowledge import search

    monkeypatch.setattr(search, "_common_terms", lambda: ({"the": 0.9, "pump": 0.5}, 150.0))
    assert search._distinctive(["the", "pump", "seal"]) == ["the", "pump", "seal"]
