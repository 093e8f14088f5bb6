"""A query's two embedder passes run at once and give exactly what the embedder gives one pass at a time."""

from __future__ import annotations

import numpy as np
import pytest

from knowledge.query_embedding import query_embeddings, sparse_literal
from protostar.llm.registry import get_embedder


@pytest.mark.parametrize("query", ["How many days of paid leave do employees get?", "연차 휴가는 며칠인가요?"])
def test_both_passes_at_once_equal_each_pass_alone(query):
    vector, literal = query_embeddings(query, dense=True, sparse=True)

    assert np.array_equal(vector, get_embedder().embed_query(query))
    assert literal == sparse_literal(query) and literal.startswith("{")


def test_only_the_wanted_pass_runs():
    vector, literal = query_embeddings("vacation", dense=False, sparse=True)
    assert vector is None and literal is not None
    vector, literal = query_embeddings("vacation", dense=True, sparse=False)
    assert literal is None and len(vector) == get_embedder().dimensions


def test_a_failing_pass_raises_after_both_ended(monkeypatch):
    embedder = get_embedder()

    def broken(text):
        raise RuntimeError("embedder gone")

    monkeypatch.setattr(embedder, "embed_query", broken)
    with pytest.raises(RuntimeError, match="embedder gone"):
        query_embeddings("vacation", dense=True, sparse=True)
