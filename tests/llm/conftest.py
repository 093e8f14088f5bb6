"""A scripted OpenAI-compatible server on loopback, shared by the session and reset for every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.llmserver import LLMTestServer


@pytest.fixture(scope="session")
def llm_server_session() -> Iterator[LLMTestServer]:
    with LLMTestServer() as server:
        yield server


@pytest.fixture
def llm_server(llm_server_session: LLMTestServer) -> Iterator[LLMTestServer]:
    llm_server_session.reset()
    yield llm_server_session
    llm_server_session.reset()


@pytest.fixture
def remote_llm(settings, llm_server: LLMTestServer) -> LLMTestServer:
    """Settings that point the OpenAI vendors at the test server (the registry resets on each change)."""
    settings.LLM_BASE_URL = llm_server.base_url
    settings.LLM_API_KEY = "test-key"
    settings.LLM_MODEL = "protostar-test"
    settings.LLM_TIMEOUT = 10.0
    settings.LLM_MAX_RETRIES = 1
    settings.CHAT_MODEL_BACKEND = "protostar.llm.openai.OpenAIChatModel"
    settings.EMBEDDING_BASE_URL = llm_server.base_url
    settings.EMBEDDING_MODEL = "test-embedding"
    settings.EMBEDDING_DIMENSIONS = 384
    settings.EMBEDDER_BACKEND = "protostar.llm.openai.OpenAIEmbedder"
    return llm_server
