"""Hybrid retrieval: pgvector HNSW (cosine) + Korean-aware full-text, fused by reciprocal rank, in SQL.

Four lists: the chunk vectors, the best sentence window of each chunk (dense), keywords, and the windows' sparse
latent terms over the chunks the other three found. The three embedding lists rank each language's candidates
against that language's own average (see ``SEARCH_LANGUAGE_CENTERING``). One entry point, ``search_chunks``, used by
the chat worker, the admin and the CLI. Access control is part of the query, and pgvector's iterative index scan
keeps scanning until enough visible rows are found.
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction

from knowledge.lexical import tsquery_text
from knowledge.models import page_range_label
from knowledge.query_embedding import query_embeddings
from knowledge.selectors import visibility_filter_sql
from knowledge.snippets import make_snippet
from protostar.text import keyword_terms, topical_terms

MAX_K = 100
MODES = ("hybrid", "vector", "window", "keyword", "sparse")
# Chunk languages (``protostar.text.detect_language``); each is ranked against its own average when centering.
LANGUAGES = ("ko", "en")
# Windows fetched per chunk wanted: a chunk with several close windows takes more than one slot. Each window fetched
# is an HNSW step (for the sparse list the dearest part of a search); 2 gives the golden set the same results as 3
# and a large synthetic corpus nearly the same top 10, faster (docs/benchmarks.md, search latency).
WINDOWS_PER_CHUNK = 2


class SearchError(ValueError):
    """A query that cannot be searched; the message is meant for the person who typed it."""


@dataclass(frozen=True)
class SearchHit:
    chunk_id: int
    document_id: int
    title: str
    original_filename: str
    ordinal: int
    page_start: int | None
    page_end: int | None
    section: str
    text: str
    snippet: str
    vector_rank: int | None
    keyword_rank: int | None
    score: float
    highlights: tuple[tuple[int, int], ...] = ()
    sparse_rank: int | None = None
    window_rank: int | None = None

    @property
    def page_label(self) -> str:
        return page_range_label(self.page_start, self.page_end)

    @property
    def snippet_html(self) -> str:
        """The snippet escaped, with matched terms in <mark>: safe to insert as HTML."""
        out, cursor = [], 0
        for start, end in self.highlights:
            out += [html.escape(self.snippet[cursor:start]), "<mark>", html.escape(self.snippet[start:end]), "</mark>"]
            cursor = end
        out.append(html.escape(self.snippet[cursor:]))
        return "".join(out)


def validate_query(query: str) -> str:
    query = (query or "").strip()
    if not query:
        raise SearchError("Type a question or some words to search for.")
    if not keyword_terms(query):
        raise SearchError("The query has no letters or digits to search for.")
    # Longer text adds nothing the embedder can use (it reads ~512 tokens) and only slows the keyword side.
    return query[: settings.SEARCH_MAX_QUERY_CHARS]


def search_chunks(
    *,
    query: str,
    user,
    k: int = 10,
    document_ids: list[int] | None = None,
    uploaded_after: datetime | None = None,
    uploaded_before: datetime | None = None,
    mode: str = "hybrid",
) -> list[SearchHit]:
    """Ranked chunks for ``query`` among the ready documents ``user`` may read.

    ``mode`` is ``hybrid`` (default: every list fused), or one list alone for evaluation: ``vector``, ``window``,
    ``keyword`` or ``sparse``.
    """
    query = validate_query(query)
    k = max(1, min(int(k), MAX_K))
    if mode not in MODES:
        raise SearchError(f"Unknown search mode {mode!r}.")
    terms = _distinctive(topical_terms(query))
    use_window = mode == "window" or (mode == "hybrid" and settings.SEARCH_WINDOW_WEIGHT > 0)
    vector, sparse = query_embeddings(
        query, dense=mode in ("hybrid", "vector") or use_window, sparse=mode in ("hybrid", "sparse")
    )
    sql, params = _build_sql(
        vector=vector if mode != "window" else None,
        window_vector=vector if use_window else None,
        sparse=sparse,
        terms=terms if mode in ("hybrid", "keyword") else None,
        user=user,
        k=k,
        filters=_filter_clause(document_ids, uploaded_after, uploaded_before),
    )
    with transaction.atomic(), connection.cursor() as cursor:
        # Filtered HNSW scans stop early unless iterative scans are on (pgvector ≥ 0.8): keep scanning until
        # enough rows pass the access filter.
        cursor.execute(
            "SELECT set_config('hnsw.ef_search', %s, true), set_config('hnsw.iterative_scan', 'relaxed_order', true)",
            [str(max(settings.SEARCH_HNSW_EF, settings.SEARCH_CANDIDATES))],
        )
        cursor.execute(sql, params)
        columns = [column.name for column in cursor.description]
        rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    return [_hit(row, terms) for row in rows]


def load_statistics() -> None:
    """Read the keyword and language statistics the search consults (refreshed every ``TERM_STATS_TTL`` s) now."""
    _common_terms()
    _language_shares()


_term_stats: tuple[float, dict[str, float], float] = (0.0, {}, 0.0)
TERM_STATS_TTL = 300.0
# Terms matching fewer rows than this are cheap to rank, however common they are in a small knowledge base.
PRUNE_MIN_ROWS = 200


def _common_terms() -> tuple[dict[str, float], float]:
    """Share of chunks containing each common term (what ANALYZE keeps for the tsvector column), and the row count."""
    global _term_stats
    loaded_at, frequencies, total = _term_stats
    if time.monotonic() - loaded_at < TERM_STATS_TTL:
        return frequencies, total
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT s.most_common_elems::text::text[], s.most_common_elem_freqs, c.reltuples"
            " FROM pg_class c LEFT JOIN pg_stats s ON s.schemaname = current_schema()"
            " AND s.tablename = 'knowledge_chunk' AND s.attname = 'search_vector'"
            " WHERE c.oid = 'knowledge_chunk'::regclass"
        )
        elems, freqs, total = cursor.fetchone()
    frequencies = dict(zip(elems, freqs, strict=False)) if elems else {}
    _term_stats = (time.monotonic(), frequencies, max(float(total or 0), 0.0))
    return frequencies, _term_stats[2]


def _distinctive(terms: list[str]) -> list[str]:
    """Drop terms that are in a large share of a large table: they cost the most to rank and say the least."""
    frequencies, total = _common_terms()
    # Ranking cost grows with the rows a term matches: cap them, relative to the table and absolutely.
    limit = max(PRUNE_MIN_ROWS, min(settings.SEARCH_MAX_TERM_ROWS, settings.SEARCH_MAX_TERM_FREQUENCY * total))
    return [term for term in terms if frequencies.get(term, 0.0) * total <= limit]


class SqlParams(dict):
    """Named query parameters: ``bind`` returns the ``%(name)s`` placeholder for a value, so each SQL piece names
    what it uses and no positional list has to stay in step with the text. Binding the same name to the same
    value again reuses it; another value gets a numbered name."""

    def bind(self, name: str, value) -> str:
        key, number = name, 1
        while key in self and self[key] != value:
            number += 1
            key = f"{name}_{number}"
        self[key] = value
        return f"%({key})s"


def _filter_clause(document_ids, uploaded_after, uploaded_before) -> tuple[str, SqlParams]:
    # A document being re-ingested keeps its previous chunk set searchable until the swap replaces it in one
    # transaction; a new document has no chunks before that swap, and a failed one is hidden.
    params, clauses = SqlParams(), ["d.status <> 'failed'"]
    if document_ids is not None:
        clauses.append(f"d.id = ANY({params.bind('document_ids', list(document_ids))})")
    if uploaded_after is not None:
        clauses.append(f"d.created_at >= {params.bind('uploaded_after', uploaded_after)}")
    if uploaded_before is not None:
        clauses.append(f"d.created_at < {params.bind('uploaded_before', uploaded_before)}")
    return " AND ".join(clauses), params


# The columns a search returns, named as ``SearchHit`` fields; a list not in the query ranks as NULL.
LIST_RANK_COLUMNS = {"vec": "vector_rank", "kw": "keyword_rank", "sp": "sparse_rank", "win": "window_rank"}
HIT_COLUMNS = (
    "c.id AS chunk_id, c.document_id, d.title, d.original_filename, c.ordinal, c.page_start, c.page_end,"
    " c.section_path AS section, c.text"
)


def _build_sql(
    *,
    vector,
    window_vector,
    sparse: str | None,
    terms: list[str] | None,
    user,
    k: int,
    filters: tuple[str, dict],
) -> tuple[str, SqlParams]:
    params = SqlParams(filters[1])
    visible_sql, visible_params = visibility_filter_sql(user)
    params.update(visible_params)
    where = f"{filters[0]} AND {visible_sql}"
    candidates = max(settings.SEARCH_CANDIDATES, k)
    lists: list[tuple[str, str]] = []
    if vector is not None:
        distance = f"c.embedding <=> {params.bind('vector', _vector_literal(vector))}::vector"
        lists.append(_nearest_list(params, "vec", distance, where, candidates))
    if window_vector is not None:
        distance = f"w.embedding <=> {params.bind('vector', _vector_literal(window_vector))}::vector"
        lists.append(_nearest_list(params, "win", distance, where, candidates, windows=True))
    if terms:
        lists.append(_keyword_list(params, terms, where, candidates))
    if sparse is not None and lists:
        lists.append(_rescored_sparse_list(params, sparse, [name for name, _ in lists], candidates))
    elif sparse is not None:
        # The sparse list alone (``mode="sparse"``): its own index scan. Inner product of latent-term weights
        # (pgvector's <#> is its negative, so ascending is best first).
        distance = f"w.sparse_embedding <#> {params.bind('sparse', sparse)}::sparsevec"
        with_sparse = f"{where} AND w.sparse_embedding IS NOT NULL"
        lists.append(_nearest_list(params, "sp", distance, with_sparse, candidates, windows=True))
    if not lists:
        return "SELECT NULL WHERE FALSE", params
    names = [name for name, _ in lists]
    ranks = ", ".join(
        f"{name if name in names else 'NULL::bigint'}{'.rank' if name in names else ''} AS {column}"
        for name, column in LIST_RANK_COLUMNS.items()
    )
    weights = {
        "vec": settings.SEARCH_VECTOR_WEIGHT,
        "win": settings.SEARCH_WINDOW_WEIGHT,
        "sp": settings.SEARCH_SPARSE_WEIGHT,
        "kw": settings.SEARCH_KEYWORD_WEIGHT,
    }
    score = " + ".join(
        f"COALESCE({params.bind(f'{name}_weight', weights[name])}{' * kw.coverage' if name == 'kw' else ''}"
        f" / ({settings.SEARCH_RRF_K} + {name}.rank), 0)"
        for name in names
    )
    sql = (
        f"WITH {', '.join(cte for _, cte in lists)} "
        f"SELECT {HIT_COLUMNS}, {ranks}, {score} AS score"
        f" FROM ({' UNION '.join(f'SELECT id FROM {name}' for name in names)}) ids"
        + "".join(f" LEFT JOIN {name} ON {name}.id = ids.id" for name in names)
        + " JOIN knowledge_chunk c ON c.id = ids.id JOIN knowledge_document d ON d.id = c.document_id"
        f" ORDER BY score DESC, c.id LIMIT {params.bind('k', k)}"
    )
    return sql, params


def _nearest_list(
    params: SqlParams, name: str, distance: str, where: str, candidates: int, *, windows: bool = False
) -> tuple[str, str]:
    """The ``candidates`` nearest visible chunks by an index-backed distance, ranked 1…n.

    With ``windows`` the distance is a window's and a chunk counts by its best window. With language centering,
    each language's candidates are fetched apart and their distances taken relative to that group's mean, so the
    embedder's preference for the query's own language does not decide the ranking.
    """
    groups = _language_groups() if settings.SEARCH_LANGUAGE_CENTERING else [("", [])]
    limit = params.bind("candidates", candidates)
    parts = []
    for clause, values in groups:
        part_where = where + clause.format(*(params.bind("language", value) for value in values))
        if windows:
            window_limit = params.bind("window_candidates", candidates * WINDOWS_PER_CHUNK)
            nearest = (
                f"SELECT chunk_id AS id, min(dist) AS dist FROM (SELECT w.chunk_id, {distance} AS dist"
                " FROM knowledge_chunkwindow w JOIN knowledge_chunk c ON c.id = w.chunk_id"
                f" JOIN knowledge_document d ON d.id = c.document_id WHERE {part_where} ORDER BY {distance}"
                f" LIMIT {window_limit}) nw GROUP BY chunk_id ORDER BY dist, chunk_id LIMIT {limit}"
            )
        else:
            nearest = (
                f"SELECT c.id, {distance} AS dist FROM knowledge_chunk c"
                f" JOIN knowledge_document d ON d.id = c.document_id WHERE {part_where} ORDER BY {distance}"
                f" LIMIT {limit}"
            )
        center = " - avg(dist) OVER ()" if clause else ""
        parts.append(f"SELECT id, dist{center} AS dist FROM ({nearest}) n")
    cte = (
        f"{name} AS (SELECT id, row_number() OVER (ORDER BY dist, id) AS rank"
        f" FROM ({' UNION ALL '.join(parts)}) u ORDER BY dist, id LIMIT {limit})"
    )
    return name, cte


def _rescored_sparse_list(params: SqlParams, literal: str, pool: list[str], candidates: int) -> tuple[str, str]:
    """The sparse list over the other lists' candidates: each pooled chunk scored by its best window's latent-term
    inner product. Centered per language over the pool, with the groups of ``_language_groups``: a knowledge base
    (almost) in one language is one group, so a stray chunk of another language is not ranked against itself alone."""
    center = ""
    if settings.SEARCH_LANGUAGE_CENTERING and len(_language_groups()) > 1:
        grouped = params.bind("grouped_languages", list(LANGUAGES[:-1]))
        center = f" - avg(dist) OVER (PARTITION BY CASE WHEN language = ANY({grouped}) THEN language END)"
    cte = (
        "sp AS (SELECT id, row_number() OVER (ORDER BY dist, id) AS rank FROM ("
        f" SELECT id, dist{center} AS dist FROM ("
        f" SELECT c.id, c.language, min(w.sparse_embedding <#> {params.bind('sparse', literal)}::sparsevec) AS dist"
        f" FROM ({' UNION '.join(f'SELECT id FROM {name}' for name in pool)}) p"
        " JOIN knowledge_chunk c ON c.id = p.id JOIN knowledge_chunkwindow w ON w.chunk_id = c.id"
        " WHERE w.sparse_embedding IS NOT NULL GROUP BY c.id, c.language) s) u"
        f" ORDER BY dist, id LIMIT {params.bind('candidates', candidates)})"
    )
    return "sp", cte


def _language_groups() -> list[tuple[str, list]]:
    """One filter per language (a condition with ``{}`` where its value is bound, and the value); the last takes
    every other value too, so no chunk falls outside all groups.

    A knowledge base (almost) in one language gets a single unfiltered group: there is nothing to center, and a
    filtered index scan for a language with no rows would walk the whole graph.
    """
    shares = _language_shares()
    present = (
        LANGUAGES if shares is None else [lang for lang in LANGUAGES if shares.get(lang, 0.0) >= MIN_LANGUAGE_SHARE]
    )
    if len(present) < 2:
        return [("", [])]
    groups: list[tuple[str, list]] = [(" AND c.language = {}", [language]) for language in LANGUAGES[:-1]]
    return [*groups, (" AND c.language <> ALL({})", [list(LANGUAGES[:-1])])]


_language_stats: tuple[float, dict[str, float] | None] = (-TERM_STATS_TTL, None)
# A language needs this share of all chunks to be ranked as a group of its own (see ``_language_groups``).
MIN_LANGUAGE_SHARE = 0.01


def _language_shares() -> dict[str, float] | None:
    """Share of chunks per language from the statistics ANALYZE keeps; None before the table was first analyzed."""
    global _language_stats
    loaded_at, shares = _language_stats
    if time.monotonic() - loaded_at < TERM_STATS_TTL:
        return shares
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT most_common_vals::text::text[], most_common_freqs FROM pg_stats WHERE schemaname = current_schema()"
            " AND tablename = 'knowledge_chunk' AND attname = 'language'"
        )
        row = cursor.fetchone()
    shares = dict(zip(row[0], row[1], strict=False)) if row and row[0] else None
    _language_stats = (time.monotonic(), shares)
    return shares


def _keyword_list(params: SqlParams, terms: list[str], where: str, candidates: int) -> tuple[str, str]:
    # Candidates by ts_rank through the GIN index (ts_rank_cd gave the golden set the same figures and took twice as
    # long on every matching row, see docs/benchmarks.md); then each candidate's coverage: the share of the query's
    # distinct terms it contains. A chunk matching one stray bigram of a Korean question is weak evidence and
    # must not outvote the vector side, so coverage both orders the list and scales its fused contribution.
    cte = (
        "kw AS (SELECT id, coverage, row_number() OVER (ORDER BY coverage DESC, text_rank DESC, id) AS rank FROM ("
        " SELECT t.id, t.text_rank, cardinality(ARRAY(SELECT unnest(tsvector_to_array(t.search_vector))"
        f" INTERSECT SELECT unnest({params.bind('terms', terms)}::text[])))::float"
        f" / {params.bind('term_count', len(terms))} AS coverage FROM ("
        " SELECT c.id, c.search_vector, ts_rank(c.search_vector, q) AS text_rank"
        " FROM knowledge_chunk c JOIN knowledge_document d ON d.id = c.document_id,"
        f" to_tsquery('simple', {params.bind('tsquery', tsquery_text(terms))}) q"
        f" WHERE c.search_vector @@ q AND {where}"
        f" ORDER BY text_rank DESC, c.id LIMIT {params.bind('candidates', candidates)}) t) s"
        f" WHERE coverage >= {params.bind('min_coverage', _min_coverage(len(terms)))})"
    )
    return "kw", cte


def _min_coverage(term_count: int) -> float:
    # A one- or two-term query must be allowed to match on one term.
    return 0.0 if term_count <= 2 else settings.SEARCH_MIN_KEYWORD_COVERAGE


def _vector_literal(vector) -> str:
    return "[" + ",".join(f"{float(x):.7g}" for x in vector) + "]"


def _hit(row: dict, terms: list[str]) -> SearchHit:
    snippet, highlights = make_snippet(row["text"], terms)
    return SearchHit(**{**row, "score": round(float(row["score"]), 6)}, snippet=snippet, highlights=highlights)
