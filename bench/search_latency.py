"""Search latency at 100k chunks: bare pgvector top-10 vs our hybrid search (query embedding excluded), same run.

    .venv/bin/python bench/search_latency.py [--chunks 100000] [--queries 200]

Fills the chunk table with generated Korean/English text and random unit vectors of the real dimension (once;
later runs reuse them), then prints p50/p95 of (a) ``ORDER BY embedding <=> q LIMIT 10`` and (b) ``search_chunks``,
the ratio b/a (goal ≤ 3.0), and HNSW recall@10 against exact search for several ``hnsw.ef_search`` values (goal ≥ 0.95).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.stack import percentile, prepare

SYNTHETIC_PREFIX = "bench-synthetic-"


def vocabulary(rng: np.random.Generator, size: int = 30_000) -> list[str]:
    """Pseudo-words, half Hangul (2–4 syllables), half Latin (3–9 letters): a realistic number of distinct terms."""
    words = []
    for i in range(size):
        if i % 2:
            words.append("".join(chr(0xAC00 + int(rng.integers(0, 11172))) for _ in range(int(rng.integers(2, 5)))))
        else:
            words.append("".join(chr(97 + int(rng.integers(0, 26))) for _ in range(int(rng.integers(3, 10)))))
    return words


def zipf_text(rng: np.random.Generator, words: list[str], count: int) -> str:
    # Word frequencies in real text follow Zipf's law: a few very common words, a long tail of rare ones.
    ranks = np.minimum(rng.zipf(1.15, size=count), len(words)) - 1
    return " ".join(words[r] for r in ranks)


def clustered_vectors(rng: np.random.Generator, centers: np.ndarray, count: int) -> np.ndarray:
    """Unit vectors around topic centres, as real embeddings are (uniform random vectors have no neighbours)."""
    picks = centers[rng.integers(0, len(centers), size=count)]
    vectors = picks + rng.standard_normal(picks.shape).astype(np.float32) * (1.0 / np.sqrt(picks.shape[1]))
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def topic_centres(dims: int, count: int = 500) -> np.ndarray:
    centers = np.random.default_rng(3).standard_normal((count, dims)).astype(np.float32)
    return centers / np.linalg.norm(centers, axis=1, keepdims=True)


def fill(total: int, dims: int) -> None:
    from django.db import connection

    from knowledge.lexical import search_terms_text
    from knowledge.models import Chunk, Document

    have = Chunk.objects.filter(document__title__startswith=SYNTHETIC_PREFIX).count()
    if have >= total:
        print(f"reusing {have} synthetic chunks")
        return
    Document.objects.filter(title__startswith=SYNTHETIC_PREFIX).delete()
    rng = np.random.default_rng(1)
    words = vocabulary(rng)
    centers = topic_centres(dims)
    per_doc = 100
    print(f"filling {total} chunks …", flush=True)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX IF EXISTS chunk_embedding_hnsw")
    for doc_index in range(total // per_doc):
        document = Document.objects.create(
            title=f"{SYNTHETIC_PREFIX}{doc_index}",
            original_filename=f"synthetic-{doc_index}.txt",
            file=f"documents/synthetic-{doc_index}",
            content_type="text/plain",
            size=0,
            sha256=f"{doc_index:064x}",
            status=Document.Status.READY,
        )
        vectors = clustered_vectors(rng, centers, per_doc)
        rows = []
        for i in range(per_doc):
            text = zipf_text(rng, words, 120) + f" CODE-{doc_index}-{i}"
            rows.append(
                Chunk(
                    document=document,
                    ordinal=i,
                    text=text,
                    char_start=0,
                    char_end=len(text),
                    token_count=150,
                    embedding=vectors[i],
                    search_terms=search_terms_text(text),
                )
            )
        Chunk.objects.bulk_create(rows)
    print(f"  rows in {time.perf_counter() - started:.0f}s; building the HNSW index …", flush=True)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '1GB'")
        cursor.execute(
            "CREATE INDEX chunk_embedding_hnsw ON knowledge_chunk USING hnsw (embedding vector_cosine_ops)"
            " WITH (m = 16, ef_construction = 64)"
        )
        cursor.execute("ANALYZE knowledge_chunk")
    print(f"  index in {time.perf_counter() - started:.0f}s")


def sample_queries(count: int, dims: int) -> list[tuple[str, list[float]]]:
    from knowledge.models import Chunk

    rng = np.random.default_rng(2)
    texts = list(Chunk.objects.order_by("?").values_list("text", flat=True)[:count])
    vectors = clustered_vectors(rng, topic_centres(dims), len(texts))
    queries = []
    for text, vector in zip(texts, vectors, strict=True):
        words = text.split()
        start = int(rng.integers(0, max(1, len(words) - 4)))
        queries.append((" ".join(words[start : start + 4]), vector.tolist()))
    return queries


def bare_top10(cursor, vector: str, ef: int, exact: bool = False) -> list[int]:
    cursor.execute("BEGIN")
    cursor.execute("SELECT set_config('hnsw.ef_search', %s, true)", [str(ef)])
    if exact:
        cursor.execute("SET LOCAL enable_indexscan = off")
    cursor.execute("SELECT id FROM knowledge_chunk ORDER BY embedding <=> %s::vector LIMIT 10", [vector])
    ids = [row[0] for row in cursor.fetchall()]
    cursor.execute("COMMIT")
    return ids


class FixedQueryEmbedder:
    """Stands in for the embedder so (b) times retrieval only, as (a) does."""

    model_name = "fixed"
    dimensions = 384
    vector: list[float] = []

    def embed_query(self, text: str) -> list[float]:
        return self.vector


def measure(queries, ef: int, user) -> dict:
    from django.db import connection

    import knowledge.search as search_module
    from knowledge.search import _vector_literal, search_chunks

    fixed = FixedQueryEmbedder()
    search_module.get_embedder = lambda: fixed
    # The synthetic chunks carry no sentence windows (hence no sparse latent-term vectors either): time the dense +
    # keyword lists only.
    from django.conf import settings

    settings.SEARCH_SPARSE_WEIGHT = 0
    settings.SEARCH_WINDOW_WEIGHT = 0
    bare_ms, ours_ms = [], []
    with connection.cursor() as cursor:
        for text, vector in queries:
            literal = _vector_literal(vector)
            started = time.perf_counter()
            bare_top10(cursor, literal, ef)
            bare_ms.append((time.perf_counter() - started) * 1000)
            fixed.vector = vector
            started = time.perf_counter()
            search_chunks(query=text, user=user, k=10)
            ours_ms.append((time.perf_counter() - started) * 1000)
    return {"bare": bare_ms, "ours": ours_ms}


def recall(queries, ef_values: list[int]) -> dict[int, float]:
    from django.db import connection

    from knowledge.search import _vector_literal

    results = {}
    with connection.cursor() as cursor:
        exact = {i: set(bare_top10(cursor, _vector_literal(v), 40, exact=True)) for i, (_, v) in enumerate(queries)}
        for ef in ef_values:
            found = sum(
                len(exact[i] & set(bare_top10(cursor, _vector_literal(v), ef))) for i, (_, v) in enumerate(queries)
            )
            results[ef] = found / (10 * len(queries))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--refill", action="store_true", help="regenerate the synthetic chunks")
    args = parser.parse_args()
    prepare()
    from django.conf import settings
    from django.contrib.auth import get_user_model

    from knowledge.models import EMBEDDING_DIMENSIONS

    if args.refill:
        from knowledge.models import Document

        Document.objects.filter(title__startswith=SYNTHETIC_PREFIX).delete()
    fill(args.chunks, EMBEDDING_DIMENSIONS)
    user, _ = get_user_model().objects.get_or_create(username="bench-staff", defaults={"is_staff": True})
    queries = sample_queries(args.queries, EMBEDDING_DIMENSIONS)
    ef = max(settings.SEARCH_HNSW_EF, settings.SEARCH_CANDIDATES)
    measure(queries[:20], ef, user)  # warm caches
    timings = measure(queries, ef, user)
    a50, a95 = percentile(timings["bare"], 50), percentile(timings["bare"], 95)
    b50, b95 = percentile(timings["ours"], 50), percentile(timings["ours"], 95)
    print(f"\n{args.chunks} chunks, {len(queries)} queries, hnsw.ef_search={ef}")
    print(f"{'':32} {'p50 ms':>8} {'p95 ms':>8}")
    print(f"{'(a) bare ORDER BY <=> LIMIT 10':32} {a50:8.2f} {a95:8.2f}")
    print(f"{'(b) hybrid search_chunks':32} {b50:8.2f} {b95:8.2f}")
    print(f"ratio b/a: p50 {b50 / a50:.2f}  p95 {b95 / a95:.2f}   goal ≤ 3.0")
    print("\nHNSW recall@10 vs exact search:")
    for ef_value, value in recall(queries[:100], [40, 64, 100, 200]).items():
        print(f"  ef_search={ef_value:<4} recall@10 = {value:.3f}")


if __name__ == "__main__":
    main()
