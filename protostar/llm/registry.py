"""Build vendor implementations from dotted-path settings, cache them, and forget them when settings change."""

from __future__ import annotations

from functools import cache
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


@cache
def get_embedder() -> Embedder:
    return import_string(settings.EMBEDDER_BACKEND)()


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
