"""Search latency at 100k chunks: bare pgvector top-10 vs the default hybrid search (query embedding excluded).

    .venv/bin/python bench/search_latency.py [--chunks 100000] [--queries 200] [--refill] [--cold]

Fills the chunk table with generated Korean/English text and unit vectors of the real dimension, half the chunks
"ko" and half "en", each with 1–4 sentence windows that carry a dense vector near their chunk's and a sparse
latent-term vector shaped like the bundled embedder's (measured on the golden corpus, see ``LatentTerms``). This is
done once; later runs reuse the fill (and add the windows to an older fill that lacks them). Both searches run with
the searched tables and indexes in PostgreSQL's buffer cache (``pg_prewarm``; ``--cold`` skips it). It prints p50/p95
of (a) ``ORDER BY embedding <=> q LIMIT 10`` and (b) ``search_chunks`` with the default settings (chunk vector,
window vector, window sparse and keyword lists, language centering), the ratio b/a (goal ≤ 3.0), and recall@10
against exact search of the three HNSW indexes for several ``hnsw.ef_search`` values (goal ≥ 0.95).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.stack import percentile, prepare
from bench.synthetic_corpus import (
    LatentTerms,
    chunk_topics,
    clustered_vectors,
    fill,
    latent_terms_dict,
    model_check,
    synthetic_chunks,
    topic_centres,
)

# --- measurement ------------------------------------------------------------------------------------------------


class Query:
    def __init__(self, text: str, vector: np.ndarray, sparse: dict[int, float], language: str) -> None:
        self.text, self.vector, self.sparse, self.language = text, vector, sparse, language


def sample_queries(count: int, latent: LatentTerms) -> list[Query]:
    """Queries about a chunk: 4 of its words, a vector near its topic's centre, latent terms of its topic/chunk."""
    from knowledge.models import Chunk

    ids, vectors, languages, _ = synthetic_chunks()
    topics = chunk_topics(vectors)
    own_terms = latent.chunk_dims(topics)
    rng = np.random.default_rng(2)
    picks = np.sort(rng.choice(len(ids), size=min(count, len(ids)), replace=False))
    texts = dict(Chunk.objects.filter(id__in=ids[picks].tolist()).values_list("id", "text"))
    centers = topic_centres(vectors.shape[1])
    dense = np.stack([clustered_vectors(rng, centers[[topic]], 1)[0] for topic in topics[picks]])
    sparse = latent.queries(rng, languages[picks], topics[picks], own_terms[picks])
    queries = []
    for j, i in enumerate(picks):
        words = texts[int(ids[i])].split()
        start = int(rng.integers(0, max(1, len(words) - 4)))
        queries.append(Query(" ".join(words[start : start + 4]), dense[j], latent_terms_dict(*sparse[j]), languages[i]))
    rng.shuffle(queries)
    return queries


class FixedQueryEmbedder:
    """Stands in for the embedder (dense and sparse passes) so (b) times retrieval only, as (a) does."""

    model_name = "fixed"
    dimensions = 384
    sparse_dimensions = LatentTerms.DIMS

    def __init__(self) -> None:
        self.vector: np.ndarray = np.zeros(self.dimensions, dtype=np.float32)
        self.sparse: dict[int, float] = {}

    def embed_query(self, text: str) -> np.ndarray:
        return self.vector

    def embed_query_sparse(self, text: str) -> dict[int, float]:
        return dict(self.sparse)


def install(fixed: FixedQueryEmbedder) -> None:
    """Route the search's query passes (``knowledge.query_embedding``) to ``fixed``; everything else stays real."""
    from django.conf import settings

    import knowledge.query_embedding as query_embedding

    query_embedding.get_embedder = lambda: fixed
    # Same rule as protostar.llm.base.get_sparse_embedder: the sparse pass runs when the sparse list is on.
    query_embedding.get_sparse_embedder = lambda: fixed if settings.SEARCH_SPARSE_WEIGHT > 0 else None


def bare_top10(cursor, sql: str, literal: str, ef: int, exact: bool = False) -> list[int]:
    cursor.execute("BEGIN")
    cursor.execute("SELECT set_config('hnsw.ef_search', %s, true)", [str(ef)])
    if exact:
        cursor.execute("SET LOCAL enable_indexscan = off")
    cursor.execute(sql, [literal])
    ids = [row[0] for row in cursor.fetchall()]
    cursor.execute("COMMIT")
    return ids


CHUNK_TOP10 = "SELECT id FROM knowledge_chunk ORDER BY embedding <=> %s::vector LIMIT 10"
WINDOW_TOP10 = "SELECT id FROM knowledge_chunkwindow ORDER BY embedding <=> %s::vector LIMIT 10"
SPARSE_TOP10 = "SELECT id FROM knowledge_chunkwindow ORDER BY sparse_embedding <#> %s::sparsevec LIMIT 10"


def sparse_literal(query: Query) -> str:
    from pgvector import SparseVector

    return SparseVector(query.sparse, LatentTerms.DIMS).to_text()


PREWARMED = (
    "knowledge_chunk",
    "knowledge_chunk_pkey",
    "chunk_embedding_hnsw",
    "chunk_search_vector_gin",
    "knowledge_chunkwindow",
    "window_embedding_hnsw",
    "knowledge_document",
)


def prewarm() -> str:
    """Load the searched tables and indexes into PostgreSQL's buffer cache (``pg_prewarm``), as on a server that has
    been answering for a while; otherwise each query's first touch of an index page is a copy from the operating
    system's cache. Returns what happened, for the report."""
    from django.db import DatabaseError, connection, transaction

    with connection.cursor() as cursor:
        try:
            with transaction.atomic():
                cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        except DatabaseError as exc:  # an external server without the extension or the right to create it
            return f"no prewarm (pg_prewarm unavailable: {str(exc).strip()})"
        cursor.execute("SHOW shared_buffers")
        (shared_buffers,) = cursor.fetchone()
        pages = 0
        for relation in PREWARMED:
            cursor.execute("SELECT pg_prewarm(%s)", [relation])
            pages += cursor.fetchone()[0]
    return f"{pages * 8 // 1024} MiB of tables and indexes prewarmed into shared_buffers = {shared_buffers}"


def measure(queries: list[Query], ef: int, user, fixed: FixedQueryEmbedder) -> dict:
    from django.db import connection

    from knowledge.search import _vector_literal, search_chunks

    bare_ms, ours_ms, ranks = [], [], {"vector": 0, "window": 0, "sparse": 0, "keyword": 0, "hits": 0}
    with connection.cursor() as cursor:
        for query in queries:
            literal = _vector_literal(query.vector)
            started = time.perf_counter()
            bare_top10(cursor, CHUNK_TOP10, literal, ef)
            bare_ms.append((time.perf_counter() - started) * 1000)
            fixed.vector, fixed.sparse = query.vector, query.sparse
            started = time.perf_counter()
            hits = search_chunks(query=query.text, user=user, k=10)
            ours_ms.append((time.perf_counter() - started) * 1000)
            ranks["hits"] += len(hits)
            for hit in hits:
                ranks["vector"] += hit.vector_rank is not None
                ranks["window"] += hit.window_rank is not None
                ranks["sparse"] += hit.sparse_rank is not None
                ranks["keyword"] += hit.keyword_rank is not None
    return {"bare": bare_ms, "ours": ours_ms, "ranks": ranks}


RECALL_EF = (40, 64, 100, 200)
# Tried, in order, for an index still under the goal at the largest of RECALL_EF.
RECALL_EF_MORE = (400, 800)
RECALL_GOAL = 0.95


def recall(queries: list[Query]) -> dict[str, dict[int, float]]:
    """Recall@10 of each HNSW index against an exact scan, per ``hnsw.ef_search``."""
    from django.db import connection

    from knowledge.search import _vector_literal

    results = {}
    indexes = (
        ("chunk_embedding_hnsw", CHUNK_TOP10, lambda q: _vector_literal(q.vector)),
        ("window_embedding_hnsw", WINDOW_TOP10, lambda q: _vector_literal(q.vector)),
        ("window_sparse_hnsw", SPARSE_TOP10, sparse_literal),
    )
    with connection.cursor() as cursor:
        for name, sql, literal in indexes:
            literals = [literal(q) for q in queries]
            exact = [set(bare_top10(cursor, sql, value, 40, exact=True)) for value in literals]
            results[name] = {}
            for ef in (*RECALL_EF, *RECALL_EF_MORE):
                if ef in RECALL_EF_MORE and max(results[name].values()) >= RECALL_GOAL:
                    break
                found = sum(len(exact[i] & set(bare_top10(cursor, sql, value, ef))) for i, value in enumerate(literals))
                results[name][ef] = found / (10 * len(queries))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--refill", action="store_true", help="regenerate the synthetic chunks and windows")
    parser.add_argument("--model-check", action="store_true", help="print the sparse model's statistics and stop")
    parser.add_argument("--cold", action="store_true", help="do not prewarm PostgreSQL's buffer cache first")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object at the end")
    args = parser.parse_args()
    if args.model_check:
        model_check()
        return
    prepare()
    import os

    from django.conf import settings
    from django.contrib.auth import get_user_model

    latent = LatentTerms()
    fill(args.chunks, latent, refill=args.refill)
    user, _ = get_user_model().objects.get_or_create(username="bench-staff", defaults={"is_staff": True})
    queries = sample_queries(args.queries, latent)
    fixed = FixedQueryEmbedder()
    install(fixed)
    ef = max(settings.SEARCH_HNSW_EF, settings.SEARCH_CANDIDATES)
    load_before = os.getloadavg()
    warmed = prewarm() if not args.cold else "no prewarm (--cold)"
    measure(queries[:20], ef, user, fixed)  # warm caches
    timings = measure(queries, ef, user, fixed)
    load_after = os.getloadavg()
    a50, a95 = percentile(timings["bare"], 50), percentile(timings["bare"], 95)
    b50, b95 = percentile(timings["ours"], 50), percentile(timings["ours"], 95)
    print(f"\n{args.chunks} chunks, {len(queries)} queries, hnsw.ef_search={ef}; {warmed}")
    print(
        f"default search lists: vector {settings.SEARCH_VECTOR_WEIGHT}, window {settings.SEARCH_WINDOW_WEIGHT},"
        f" sparse {settings.SEARCH_SPARSE_WEIGHT}, keyword {settings.SEARCH_KEYWORD_WEIGHT};"
        f" language centering {settings.SEARCH_LANGUAGE_CENTERING}"
    )
    ranks = timings["ranks"]
    print(
        "share of returned hits found by each list: "
        + ", ".join(
            f"{name} {ranks[name] / max(1, ranks['hits']):.2f}" for name in ("vector", "window", "sparse", "keyword")
        )
    )
    print(f"{'':32} {'p50 ms':>8} {'p95 ms':>8}")
    print(f"{'(a) bare ORDER BY <=> LIMIT 10':32} {a50:8.2f} {a95:8.2f}")
    print(f"{'(b) hybrid search_chunks':32} {b50:8.2f} {b95:8.2f}")
    print(f"ratio b/a: p50 {b50 / a50:.2f}  p95 {b95 / a95:.2f}   goal ≤ 3.0")
    print(
        "load average (1/5/15 min) before: {:.2f} {:.2f} {:.2f}, after: {:.2f} {:.2f} {:.2f}".format(
            *load_before, *load_after
        )
    )
    print(f"\nHNSW recall@10 vs exact search, {min(100, len(queries))} queries (goal ≥ {RECALL_GOAL}):")
    results = recall(queries[:100])
    print(f"  {'hnsw.ef_search':24} " + " ".join(f"{ef:>6}" for ef in RECALL_EF))
    for name, values in results.items():
        line = f"  {name:24} " + " ".join(f"{values[ef]:6.3f}" for ef in RECALL_EF)
        reached = [ef for ef, value in values.items() if value >= RECALL_GOAL]
        more = ", ".join(f"{ef}: {values[ef]:.3f}" for ef in RECALL_EF_MORE if ef in values)
        line += f"   goal from ef_search {min(reached)}" if reached else "   goal not reached"
        print(line + (f" ({more})" if more else ""))
    if args.json:
        rows = [
            {"search": "(a) bare ORDER BY embedding <=> q LIMIT 10", "p50 ms": round(a50, 2), "p95 ms": round(a95, 2)},
            {"search": "(b) hybrid search_chunks, defaults", "p50 ms": round(b50, 2), "p95 ms": round(b95, 2)},
        ]
        checks = [{"figure": "ratio b/a at p50", "value": round(b50 / a50, 2), "goal": "<= 3.0"}]
        default_ef = max(settings.SEARCH_HNSW_EF, settings.SEARCH_CANDIDATES)
        checks += [
            {"figure": f"HNSW recall@10, {name}, ef_search {default_ef}", "value": values[default_ef]}
            | {"goal": f">= {RECALL_GOAL}"}
            for name, values in results.items()
            if default_ef in values
        ]
        print(json.dumps({"config": vars(args), "rows": rows, "checks": checks}, ensure_ascii=False))


if __name__ == "__main__":
    main()
