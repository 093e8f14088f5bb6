"""The synthetic knowledge base of ``bench/search_latency.py``: chunks, languages, sentence windows and their dense
and sparse vectors, shaped like the golden corpus' (see ``LatentTerms``), filled once into the bench's database and
reused by later runs; the HNSW indexes are rebuilt after a fill.
"""

from __future__ import annotations

import struct
import time

import numpy as np

SYNTHETIC_PREFIX = "bench-synthetic-"
TOPICS = 500
# Windows per chunk, 1–4 (mean 2.28; the golden corpus has 2.33, from 1 to 7).
WINDOW_COUNT_P = (0.28, 0.33, 0.22, 0.17)
# Cosine between a window's dense vector and its chunk's, as quantiles measured on the golden corpus (498 windows).
WINDOW_COSINE = ((0.0, 0.8675), (0.05, 0.906), (0.25, 0.938), (0.5, 0.966), (0.75, 0.985), (0.95, 0.999), (1.0, 0.9996))
HNSW_INDEXES = (
    ("chunk", "chunk_embedding_hnsw"),
    ("chunkwindow", "window_embedding_hnsw"),
    ("chunkwindow", "window_sparse_hnsw"),
)
WINDOW_BATCH = 2048


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


def curve(knots, x) -> np.ndarray:
    """Piecewise-linear through ``(x, y)`` knots: a quantile function or a value-by-rank profile."""
    return np.interp(x, [k[0] for k in knots], [k[1] for k in knots])


def topic_centres(dims: int, count: int = TOPICS) -> np.ndarray:
    centers = np.random.default_rng(3).standard_normal((count, dims)).astype(np.float32)
    return centers / np.linalg.norm(centers, axis=1, keepdims=True)


class LatentTerms:
    """Sparse "latent term" vectors with the shape of the bundled embedder's, for windows and queries.

    Measured on the golden corpus (``.data/bench-golden``: 498 windows, 191 questions): every window has exactly
    256 non-zeros (the embedder keeps its top 256), all positive, 1.76 at the top falling to 0.54 (``WINDOW_VALUES``,
    medians by rank; L2 norm 10.3–12.7 for 90% of windows); a few latent terms are in most windows (the commonest in
    all Korean and 92% of English ones; the 100 commonest make 19% of all non-zeros, the 1,000 commonest 59%; 10,101
    of the 16,384 dims occur at all) and those carry the larger values; the windows of one chunk share about a
    fifth of their terms (Jaccard median 0.22). Questions have 60–256 non-zeros (median 195, ``QUERY_NNZ``), smaller
    values (``QUERY_VALUES``), share a median 19 terms with an arbitrary window and 38 with their 10 best; inner
    products: median window 10.1, 10th best 18.9, best 27.4.

    The model: each language has a popularity ranking of latent terms (Zipf, three quarters shared between the
    languages), each topic a set of 600 terms, each chunk 60 of its topic's; a window samples 256 terms without
    replacement from a mixture of the three (55% common, 10% topic, 35% its chunk), its values by rank from the
    measured profile with the more likely terms ranked higher. A query draws from a mixture that leans less on the
    passage-side common terms. Simulated on a corpus of the golden set's shape, these constants give: commonest
    terms in 80%/68%/46%/33%/11%/5% of Korean windows (ranks 1/10/50/100/500/1000; golden 100%/80%/50%/33%/11%/6%),
    top 100/1000 terms 19%/59% of non-zeros, 10,484 distinct dims, same-chunk Jaccard 0.19, query–window shared
    terms 23 (median window) and 38 (top 10), inner products 10.1 / 17.5 / 27.6; 17% of a query's terms are in no
    window (golden 6%). ``--model-check`` prints these.
    """

    DIMS = 16384
    TOP_K = 256
    # (rank, median value at that rank)
    WINDOW_VALUES = (
        (0, 1.761), (1, 1.599), (2, 1.504), (4, 1.385), (8, 1.244), (16, 1.072), (32, 0.881),
        (64, 0.716), (96, 0.652), (128, 0.613), (160, 0.589), (192, 0.569), (224, 0.554), (255, 0.54),
    )  # fmt: skip
    QUERY_VALUES = (
        (0, 1.504), (1, 1.32), (2, 1.182), (4, 1.037), (8, 0.883), (16, 0.734), (32, 0.634),
        (64, 0.565), (96, 0.525), (128, 0.499), (160, 0.475), (192, 0.427), (255, 0.40),
    )  # fmt: skip
    # (quantile, non-zeros)
    QUERY_NNZ = ((0.0, 60), (0.05, 95), (0.25, 158), (0.5, 195), (0.75, 225), (0.95, 256), (1.0, 256))
    ACTIVE, EXPONENT, OFFSET, SHARED = 8000, 1.2, 40.0, 0.75
    TOPIC_TERMS, CHUNK_TERMS = 600, 60
    WINDOW_MIX = (0.55, 0.10, 0.35, 0.0)  # common, topic, chunk, uniform
    QUERY_MIX = (0.70, 0.14, 0.12, 0.04)
    QUERY_COMMON_SHARED = 0.4

    def __init__(self, topics: int = TOPICS, seed: int = 4) -> None:
        rng = np.random.default_rng(seed)
        zipf = np.where(
            np.arange(self.DIMS) < self.ACTIVE, 1.0 / (np.arange(self.DIMS) + self.OFFSET) ** self.EXPONENT, 1e-9
        )

        def ranking() -> np.ndarray:
            weights = np.empty(self.DIMS)
            weights[rng.permutation(self.DIMS)] = zipf
            return weights / weights.sum()

        shared = ranking()
        self.common = {lang: self.SHARED * shared + (1 - self.SHARED) * ranking() for lang in ("ko", "en")}
        query_side = ranking()
        self.query_common = {
            lang: (self.QUERY_COMMON_SHARED * weights + (1 - self.QUERY_COMMON_SHARED) * query_side).astype(np.float32)
            for lang, weights in self.common.items()
        }
        self.common = {lang: weights.astype(np.float32) for lang, weights in self.common.items()}
        # A topic's terms: drawn without replacement in proportion to the shared popularity.
        keys = np.log(shared)[None, :] - np.log(-np.log(rng.random((topics, self.DIMS))))
        self.topic_dims = np.argpartition(-keys, self.TOPIC_TERMS, axis=1)[:, : self.TOPIC_TERMS]
        weights = 1.0 / (np.arange(self.TOPIC_TERMS) + 10.0)
        self.topic_weights = (weights / weights.sum()).astype(np.float32)
        self.window_values = curve(self.WINDOW_VALUES, np.arange(self.TOP_K)).astype(np.float32)
        self.query_values = curve(self.QUERY_VALUES, np.arange(self.TOP_K)).astype(np.float32)

    def chunk_dims(self, topics: np.ndarray, seed: int = 6, batch: int = 10_000) -> np.ndarray:
        """Every chunk's own terms (what its windows share beyond the common ones), the same for the same topics."""
        rng = np.random.default_rng(seed)
        out = []
        for start in range(0, len(topics), batch):
            part = topics[start : start + batch]
            keys = np.log(self.topic_weights)[None, :] - np.log(rng.standard_exponential((len(part), self.TOPIC_TERMS)))
            pick = np.argpartition(-keys, self.CHUNK_TERMS, axis=1)[:, : self.CHUNK_TERMS]
            out.append(np.take_along_axis(self.topic_dims[part], pick, axis=1))
        return np.concatenate(out) if out else np.empty((0, self.CHUNK_TERMS), dtype=np.int64)

    def windows(self, rng, languages, topics, chunk_dims) -> list[tuple[np.ndarray, np.ndarray]]:
        counts = np.full(len(topics), self.TOP_K)
        return self._draw(rng, languages, topics, chunk_dims, self.WINDOW_MIX, self.common, counts, self.window_values)

    def queries(self, rng, languages, topics, chunk_dims) -> list[tuple[np.ndarray, np.ndarray]]:
        counts = curve(self.QUERY_NNZ, rng.random(len(topics))).astype(int)
        return self._draw(
            rng, languages, topics, chunk_dims, self.QUERY_MIX, self.query_common, counts, self.query_values
        )

    def _draw(self, rng, languages, topics, chunk_dims, mix, common, counts, values):
        """Sorted indices and values of each vector: ``counts[i]`` terms sampled without replacement."""
        n = len(topics)
        weights = np.empty((n, self.DIMS), dtype=np.float32)
        korean = np.asarray(languages) == "ko"
        weights[korean] = mix[0] * common["ko"]
        weights[~korean] = mix[0] * common["en"]
        rows = np.arange(n)[:, None]
        weights[rows, self.topic_dims[topics]] += mix[1] * self.topic_weights
        weights[rows, chunk_dims] += mix[2] / self.CHUNK_TERMS
        weights += mix[3] / self.DIMS
        # Exponential race: the k largest weight / Exp(1) are a weighted sample of k without replacement.
        keys = weights / np.maximum(rng.standard_exponential((n, self.DIMS), dtype=np.float32), 1e-12)
        threshold = np.partition(keys, self.DIMS - self.TOP_K, axis=1)[:, self.DIMS - self.TOP_K]
        # Values by rank; the more likely a term, the higher its value (as the common terms carry larger values).
        scale = np.exp(rng.standard_normal((n, 1)) * np.linspace(0.12, 0.04, self.TOP_K)[None, :])
        jitter = np.exp(rng.standard_normal((n, self.TOP_K)) * 0.01)
        noise = rng.gumbel(size=(n, self.TOP_K))
        out = []
        for i in range(n):
            top = np.flatnonzero(keys[i] >= threshold[i])
            if len(top) != self.TOP_K:
                top = np.argsort(-keys[i])[: self.TOP_K]
            ranked = top[np.argsort(-(np.log(weights[i, top]) + noise[i]))][: counts[i]]
            row = (values * scale[i] * jitter[i])[: counts[i]].astype(np.float32)
            order = np.argsort(ranked)
            out.append((ranked[order].astype(np.int32), row[order]))
        return out


def model_check() -> None:
    """The ``LatentTerms`` statistics quoted in its docstring, on a corpus of the golden set's shape (no database).

    34 topics (documents), half Korean, 7 chunks each (214), windows per chunk as on the golden corpus (1–7, 498 in
    all), 191 questions about a random chunk, a third of them in the other language (the golden set's cross-lingual
    share).
    """
    from itertools import combinations

    rng = np.random.default_rng(11)
    model = LatentTerms(34)
    doc_language = np.array(["ko" if d % 2 else "en" for d in range(34)])
    chunk_doc = np.repeat(np.arange(34), 7)[:214]
    own_terms = model.chunk_dims(chunk_doc)
    counts = rng.choice(np.arange(1, 8), p=np.array([60, 86, 35, 12, 14, 6, 1]) / 214, size=214)
    window_chunk = np.repeat(np.arange(214), counts)
    window_doc = chunk_doc[window_chunk]
    windows = model.windows(rng, doc_language[window_doc], window_doc, own_terms[window_chunk])
    matrix = np.zeros((len(windows), model.DIMS), dtype=np.float32)
    for i, (indices, values) in enumerate(windows):
        matrix[i, indices] = values
    present = matrix > 0
    frequency = present.sum(axis=0)
    for language in ("ko", "en"):
        rows = doc_language[window_doc] == language
        ranked = np.sort(present[rows].sum(axis=0))[::-1]
        shares = ranked[[0, 9, 49, 99, 499, 999]] / rows.sum()
        print(f"{language}: commonest terms (ranks 1/10/50/100/500/1000) in " + "/".join(f"{x:.0%}" for x in shares))
    ranked = np.sort(frequency)[::-1]
    print(
        f"top 100 / 1000 terms: {ranked[:100].sum() / ranked.sum():.0%} / {ranked[:1000].sum() / ranked.sum():.0%}"
        f" of non-zeros; {(frequency > 0).sum()} distinct dims"
    )
    jaccard = [
        (present[a] & present[b]).sum() / (present[a] | present[b]).sum()
        for chunk in range(214)
        for a, b in combinations(np.flatnonzero(window_chunk == chunk), 2)
    ]
    print(f"same-chunk window Jaccard: median {np.median(jaccard):.2f}")
    targets = rng.integers(0, 214, 191)
    languages = np.array([doc_language[chunk_doc[c]] for c in targets])
    languages[::3] = np.where(languages[::3] == "ko", "en", "ko")
    shared, products, unseen = [], [], []
    for indices, values in model.queries(rng, languages, chunk_doc[targets], own_terms[targets]):
        product = matrix[:, indices] @ values
        order = np.argsort(-product)
        common = present[:, indices].sum(axis=1)
        shared.append((np.median(common), common[order[:10]].mean()))
        products.append((np.median(product), product[order[9]], product[order[0]]))
        unseen.extend(frequency[indices] == 0)
    shared_median, products_median = np.median(shared, axis=0), np.median(products, axis=0)
    print(f"query terms shared with the median window / the 10 best: {shared_median[0]:.0f} / {shared_median[1]:.0f}")
    print("inner products, median window / 10th / best: " + " / ".join(f"{x:.1f}" for x in products_median))
    print(f"query terms in no window: {np.mean(unseen):.0%}")


def latent_terms_dict(indices: np.ndarray, values: np.ndarray) -> dict[int, float]:
    return {int(i): float(v) for i, v in zip(indices, values, strict=True)}


# --- fill ------------------------------------------------------------------------------------------------------


def fill_chunks(total: int) -> bool:
    """The synthetic chunks (texts + vectors, no windows); True when they were (re)generated."""
    from django.db import connection

    from knowledge.lexical import search_terms_text
    from knowledge.models import EMBEDDING_DIMENSIONS, Chunk, Document

    have = Chunk.objects.filter(document__title__startswith=SYNTHETIC_PREFIX).count()
    if have >= total:
        print(f"reusing {have} synthetic chunks")
        return False
    Document.objects.filter(title__startswith=SYNTHETIC_PREFIX).delete()
    rng = np.random.default_rng(1)
    words = vocabulary(rng)
    centers = topic_centres(EMBEDDING_DIMENSIONS)
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
    print(f"  chunks in {time.perf_counter() - started:.0f}s", flush=True)
    return True


SYNTHETIC_CHUNKS = "FROM knowledge_chunk c JOIN knowledge_document d ON d.id = c.document_id WHERE d.title LIKE %s"


def assign_languages() -> bool:
    """Half the chunks "ko", half "en": the half with the larger share of Hangul letters is Korean.

    (Every generated text mixes both scripts, ~39% Hangul, so ``detect_language`` calls them all Korean and the
    search would rank a single group: the language split is what the default search is timed with.)
    """
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FILTER (WHERE c.language = 'en'), count(*) {SYNTHETIC_CHUNKS}", [f"{SYNTHETIC_PREFIX}%"]
        )
        english, total = cursor.fetchone()
        if total and abs(english / total - 0.5) < 0.01:
            return False
        print("assigning chunk languages …", flush=True)
        started = time.perf_counter()
        cursor.execute("DROP INDEX IF EXISTS chunk_embedding_hnsw")  # rebuilt below; updating it row by row is slow
        cursor.execute(
            "UPDATE knowledge_chunk u SET language = s.language FROM (SELECT c.id, CASE WHEN ntile(2) OVER (ORDER BY"
            " length(regexp_replace(c.text, '[^가-힣]', '', 'g'))::float"
            " / greatest(1, length(regexp_replace(c.text, '[^[:alpha:]]', '', 'g'))), c.id) = 2 THEN 'ko' ELSE 'en' END"
            f" AS language {SYNTHETIC_CHUNKS}) s WHERE u.id = s.id AND u.language IS DISTINCT FROM s.language",
            [f"{SYNTHETIC_PREFIX}%"],
        )
    print(f"  languages in {time.perf_counter() - started:.0f}s", flush=True)
    return True


def synthetic_chunks() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Ids, dense vectors, languages and text lengths of the synthetic chunks, in id (= generation) order."""
    import psycopg
    from django.db import connection

    connection.ensure_connection()
    # Django's cursors bind on the client, which cannot return binary: vectors as bytes need a server-binding one.
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(
            f"SELECT c.id, c.embedding, c.language, length(c.text) {SYNTHETIC_CHUNKS} ORDER BY c.id",
            [f"{SYNTHETIC_PREFIX}%"],
            binary=True,
        )
        rows = cursor.fetchall()
    ids = np.array([row[0] for row in rows], dtype=np.int64)
    vectors = np.stack([np.frombuffer(bytes(row[1])[4:], dtype=">f4").astype(np.float32) for row in rows])
    languages = np.array([row[2] for row in rows])
    lengths = np.array([row[3] for row in rows], dtype=np.int64)
    return ids, vectors, languages, lengths


def chunk_topics(vectors: np.ndarray) -> np.ndarray:
    """The topic centre each chunk was generated around (its cosine to it is ~0.7, to any other ~0)."""
    return np.argmax(vectors @ topic_centres(vectors.shape[1]).T, axis=1)


def window_count() -> tuple[int, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM knowledge_chunkwindow w"
            f" WHERE w.chunk_id = c.id)) {SYNTHETIC_CHUNKS}",
            [f"{SYNTHETIC_PREFIX}%"],
        )
        _, without = cursor.fetchone()
        cursor.execute(
            f"SELECT count(*) FROM knowledge_chunkwindow w WHERE w.chunk_id IN (SELECT c.id {SYNTHETIC_CHUNKS})",
            [f"{SYNTHETIC_PREFIX}%"],
        )
        return cursor.fetchone()[0], without


def fill_windows(latent: LatentTerms, force: bool) -> bool:
    """1–4 windows per synthetic chunk (dense vector near the chunk's, sparse latent terms), written by binary COPY."""
    from django.db import connection

    windows, without = window_count()
    if windows and not without and not force:
        print(f"reusing {windows} synthetic windows")
        return False
    print("generating sentence windows …", flush=True)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX IF EXISTS window_embedding_hnsw")
        cursor.execute("DROP INDEX IF EXISTS window_sparse_hnsw")
        cursor.execute(
            f"DELETE FROM knowledge_chunkwindow WHERE chunk_id IN (SELECT c.id {SYNTHETIC_CHUNKS})",
            [f"{SYNTHETIC_PREFIX}%"],
        )
    ids, vectors, languages, lengths = synthetic_chunks()
    topics = chunk_topics(vectors)
    own_terms = latent.chunk_dims(topics)
    rng = np.random.default_rng(5)
    counts = rng.choice(np.arange(1, len(WINDOW_COUNT_P) + 1), p=WINDOW_COUNT_P, size=len(ids))
    owner = np.repeat(np.arange(len(ids)), counts)
    ordinal = np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)
    # Windows split their chunk's text into equal consecutive spans.
    span = lengths[owner] // counts[owner]
    starts, ends = ordinal * span, np.where(ordinal == counts[owner] - 1, lengths[owner], (ordinal + 1) * span)
    dims = vectors.shape[1]
    sparse_dims = latent.DIMS
    header = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
    row_head = struct.pack("!hi", 6, 8)  # 6 fields; the first (chunk_id) has 8 bytes
    with connection.cursor() as cursor:
        copy_sql = (
            "COPY knowledge_chunkwindow (chunk_id, ordinal, char_start, char_end, embedding, sparse_embedding)"
            " FROM STDIN WITH (FORMAT BINARY)"
        )
        with cursor.copy(copy_sql) as copy:
            copy.write(header)
            for start in range(0, len(owner), WINDOW_BATCH):
                part = owner[start : start + WINDOW_BATCH]
                # Dense: an exact cosine to the chunk's vector, drawn from the measured distribution.
                cosine = curve(WINDOW_COSINE, rng.random(len(part)))[:, None]
                base = vectors[part]
                noise = rng.standard_normal(base.shape).astype(np.float32)
                noise -= np.sum(noise * base, axis=1, keepdims=True) * base
                noise /= np.linalg.norm(noise, axis=1, keepdims=True)
                dense = (cosine * base + np.sqrt(1 - cosine**2) * noise).astype(">f4")
                sparse = latent.windows(rng, languages[part], topics[part], own_terms[part])
                chunks = []
                for j, i in enumerate(range(start, start + len(part))):
                    indices, values = sparse[j]
                    sparse_bytes = struct.pack("!iii", sparse_dims, len(indices), 0) + indices.astype(">i4").tobytes()
                    sparse_bytes += values.astype(">f4").tobytes()
                    chunks.append(
                        row_head
                        + struct.pack("!qiiiiiii", ids[owner[i]], 4, ordinal[i], 4, starts[i], 4, ends[i], 4 + 4 * dims)
                        + struct.pack("!HH", dims, 0)
                        + dense[j].tobytes()
                        + struct.pack("!i", len(sparse_bytes))
                        + sparse_bytes
                    )
                copy.write(b"".join(chunks))
                if (start // WINDOW_BATCH) % 20 == 0:
                    print(f"  {start + len(part)}/{len(owner)} windows", flush=True)
            copy.write(struct.pack("!h", -1))
    print(f"  {len(owner)} windows ({len(owner) / len(ids):.2f} per chunk) in {time.perf_counter() - started:.0f}s")
    return True


def build_indexes(force: bool) -> None:
    """The three HNSW indexes, built after loading with the parameters of the model (= the migrations)."""
    from django.db import connection

    from knowledge.models import Chunk, ChunkWindow

    models = {"chunk": Chunk, "chunkwindow": ChunkWindow}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE indexname = ANY(%s)", [[name for _, name in HNSW_INDEXES]]
        )
        present = {row[0] for row in cursor.fetchall()}
    missing = [(table, name) for table, name in HNSW_INDEXES if force or name not in present]
    if not missing:
        return
    print("building HNSW indexes …", flush=True)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '2GB'")
        cursor.execute("SET max_parallel_maintenance_workers = 1")  # leader + 1 worker: the machine's 2 cores
        cursor.execute("VACUUM ANALYZE knowledge_chunk")
        cursor.execute("VACUUM ANALYZE knowledge_chunkwindow")
    with connection.schema_editor(atomic=False) as editor:
        for table, name in missing:
            model = models[table]
            index = next(index for index in model._meta.indexes if index.name == name)
            index_started = time.perf_counter()
            editor.execute(f"DROP INDEX IF EXISTS {name}")
            editor.add_index(model, index)
            print(f"  {name}: {time.perf_counter() - index_started:.0f}s", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("RESET maintenance_work_mem")
        cursor.execute("RESET max_parallel_maintenance_workers")
        cursor.execute("ANALYZE knowledge_chunk")
        cursor.execute("ANALYZE knowledge_chunkwindow")
    print(f"  indexes in {time.perf_counter() - started:.0f}s", flush=True)


def fill(total: int, latent: LatentTerms, refill: bool = False) -> None:
    if refill:
        from knowledge.models import Document

        Document.objects.filter(title__startswith=SYNTHETIC_PREFIX).delete()
    new_chunks = fill_chunks(total)
    new_languages = assign_languages()
    new_windows = fill_windows(latent, force=new_chunks or new_languages)
    build_indexes(force=new_chunks or new_languages or new_windows)
