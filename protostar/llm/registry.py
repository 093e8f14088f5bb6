"""Build vendor implementations from dotted-path settings, cache them, and forget them when settings change."""

from __future__ import annotations

import time
from functools import cache, wraps
from typing import TYPE_CHECKING

from django.conf import settings
from django.utils.module_loading import import_string

from protostar.llm.base import ChatModel, Embedder, SparseEmbedder

if TYPE_CHECKING:
    from chat.rewriting import QueryRewriter
    from summaries.summarizers import Summarizer

WATCHED_SETTINGS = {
    "EMBEDDER_BACKEND",
    "CHAT_MODEL_BACKEND",
    "SUMMARIZER_BACKEND",
    "CHAT_QUERY_REWRITER",
    "LLM_BASE_URL",
    "LLM_MODEL",
    "LLM_API_KEY",
    "LLM_TIMEOUT",
    "LLM_MAX_RETRIES",
    "EMBEDDING_BASE_URL",
    "EMBEDDING_MODEL",
    "EMBEDDING_DIMENSIONS",
}


# The embedder's calls and the kind each is reported as in ``protostar_embedder_seconds``.
TIMED_EMBEDDER_CALLS = {
    "embed_query": "query",
    "embed_passages": "passages",
    "embed_query_sparse": "query_sparse",
    "embed_passages_sparse": "passages_sparse",
}


@cache
def get_embedder() -> Embedder:
    return _timed(import_string(settings.EMBEDDER_BACKEND)())


def _timed(embedder: Embedder) -> Embedder:
    """Time every embedder call into the latency histogram, whatever the backend (instance attributes shadow the
    methods, so ``isinstance`` checks against the Protocols still see the same object)."""
    from protostar import metrics

    for name, kind in TIMED_EMBEDDER_CALLS.items():
        method = getattr(embedder, name, None)
        if method is None:
            continue

        def timed(*args, _method=method, _kind=kind, **kwargs):
            started = time.perf_counter()
            try:
                return _method(*args, **kwargs)
            finally:
                metrics.EMBEDDER_LATENCY.labels(_kind).observe(time.perf_counter() - started)

        setattr(embedder, name, wraps(method)(timed))
    return embedder


@cache
def get_chat_model() -> ChatModel:
    return import_string(settings.CHAT_MODEL_BACKEND)()


@cache
def get_summarizer() -> Summarizer:
    """The conversation-memory summarizer (``SUMMARIZER_BACKEND``); see ``summaries.summarizers``."""
    return import_string(settings.SUMMARIZER_BACKEND)()


def get_query_rewriter() -> QueryRewriter:
    """How a follow-up question becomes a search query (``CHAT_QUERY_REWRITER``); see ``chat.rewriting``."""
    return import_string(settings.CHAT_QUERY_REWRITER)()


def get_sparse_embedder() -> SparseEmbedder | None:
    """The embedder's sparse side, when it has one and the sparse list is on (SEARCH_SPARSE_WEIGHT > 0)."""
    embedder = get_embedder()
    if settings.SEARCH_SPARSE_WEIGHT > 0 and isinstance(embedder, SparseEmbedder):
        return embedder
    return None


def reset() -> None:
    get_embedder.cache_clear()
    get_chat_model.cache_clear()
    get_summarizer.cache_clear()


def _on_setting_changed(*, setting: str, **kwargs) -> None:
    if setting in WATCHED_SETTINGS:
        reset()


def connect_signals() -> None:
    from django.core.signals import setting_changed

    setting_changed.connect(_on_setting_changed, dispatch_uid="protostar.llm.registry")
