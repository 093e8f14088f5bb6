"""A search query's two embedder passes, the dense vector and the sparse latent terms, run at once on two threads.

With one OpenMP thread per pass (as in the chat worker) a question's two passes together take little more than the
longer one (docs/benchmarks.md). A process can run them at a lower CPU priority while it has other work that must not
wait (``lower_priority``): the chat worker does while answers are streaming, so those get the CPU before the questions
still being embedded, and a question asked while nothing streams is embedded at full priority (see
``docs/benchmarks.md``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any, TypeVar

from pgvector import SparseVector

from knowledge.models import SPARSE_DIMENSIONS
from protostar.llm.base import get_embedder, get_sparse_embedder

T = TypeVar("T")

# A thread's priority can be lowered but not raised back without privileges, so the passes at full priority and
# those at the lowered one have their own threads. The embedder's locks still allow one pass of each kind at a time.
_passes = ThreadPoolExecutor(max_workers=2, thread_name_prefix="query-pass")
_yielding_passes = ThreadPoolExecutor(max_workers=2, thread_name_prefix="query-pass-low")
_niceness = 0
_applied = threading.local()


def _always() -> bool:
    return True


_yield_when: Callable[[], bool] = _always


def lower_priority(niceness: int, *, when: Callable[[], bool] = _always) -> None:
    """Run this process's query passes at ``niceness`` (0–19) whenever ``when()`` is true as a pass is asked for.

    A thread's niceness only ever goes up (raising its priority needs privileges): a second call can lower the
    priority further, never raise it back.
    """
    global _niceness, _yield_when
    _niceness = max(_niceness, min(int(niceness), 19))
    _yield_when = when


def query_embeddings(query: str, *, dense: bool, sparse: bool) -> tuple[Any, str | None]:
    """The query's dense vector and sparse vector literal, each ``None`` when not wanted."""
    niceness = _niceness if _niceness and _yield_when() else 0
    passes = _yielding_passes if niceness else _passes
    vector = passes.submit(_at_priority, niceness, get_embedder().embed_query, query) if dense else None
    literal = passes.submit(_at_priority, niceness, sparse_literal, query) if sparse else None
    # Both end before anything is raised: a search never leaves a pass running behind it.
    wait([future for future in (vector, literal) if future is not None])
    return (vector.result() if vector else None), (literal.result() if literal else None)


def sparse_literal(query: str) -> str | None:
    """The query's sparse vector as pgvector text, or ``None`` when no sparse embedder is configured."""
    embedder = get_sparse_embedder()
    if embedder is None:
        return None
    return SparseVector(embedder.embed_query_sparse(query), SPARSE_DIMENSIONS).to_text()


def _at_priority(niceness: int, func: Callable[[str], T], query: str) -> T:
    if getattr(_applied, "niceness", 0) != niceness:
        # Linux keeps a niceness per thread: this lowers the pass thread, not the process.
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)
        _applied.niceness = niceness
    return func(query)
