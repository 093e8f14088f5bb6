"""The embedder's calls timed into ``protostar_embedder_seconds``, whatever the backend."""

from __future__ import annotations

import time
from functools import wraps
from typing import Any, TypeVar

from protostar import metrics

T = TypeVar("T")

# The embedder's calls and the kind each is reported as in ``protostar_embedder_seconds``.
TIMED_EMBEDDER_CALLS = {
    "embed_query": "query",
    "embed_passages": "passages",
    "embed_query_sparse": "query_sparse",
    "embed_passages_sparse": "passages_sparse",
}


def timed_embedder(embedder: T) -> T:
    """Time every embedder call into the latency histogram (instance attributes shadow the methods, so
    ``isinstance`` checks against the Protocols still see the same object). Each call looks its method up on the
    class when it runs, so a method replaced on the class later (a test's patch) is the one timed and called."""
    for name, kind in TIMED_EMBEDDER_CALLS.items():
        method = getattr(embedder, name, None)
        if method is None:
            continue

        def timed(*args: Any, _name: str = name, _kind: str = kind, _method: Any = method, **kwargs: Any) -> Any:
            on_class = getattr(type(embedder), _name, None)
            started = time.perf_counter()
            try:
                if on_class is None:  # set on the instance itself, not a method of its class
                    return _method(*args, **kwargs)
                return on_class(embedder, *args, **kwargs)
            finally:
                metrics.EMBEDDER_LATENCY.labels(_kind).observe(time.perf_counter() - started)

        setattr(embedder, name, wraps(method)(timed))
    return embedder
