"""A query's two embedder passes run at once and give exactly what the embedder gives one pass at a time."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

from knowledge import query_embedding
from knowledge.query_embedding import lower_priority, query_embeddings, sparse_literal
from protostar.llm.base import get_embedder


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


def test_passes_run_at_the_lowered_priority_only_while_the_process_says_so(monkeypatch):
    monkeypatch.setattr(query_embedding, "_niceness", 0)
    monkeypatch.setattr(query_embedding, "_yield_when", query_embedding._always)
    embedder = get_embedder()
    embed_query, seen = embedder.embed_query, []

    def noting_the_priority(text):
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return embed_query(text)

    monkeypatch.setattr(embedder, "embed_query", noting_the_priority)
    busy = threading.Event()
    # 19, the lowest priority: any process may lower itself that far, whatever niceness it started at.
    lower_priority(19, when=busy.is_set)

    query_embeddings("vacation", dense=True, sparse=False)
    busy.set()
    query_embeddings("vacation", dense=True, sparse=False)
    busy.clear()
    query_embeddings("vacation", dense=True, sparse=False)

    own = os.getpriority(os.PRIO_PROCESS, 0)
    assert seen == [own, 19, own]
