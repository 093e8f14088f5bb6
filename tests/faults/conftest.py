"""The fault suite's stack (one for the session: its database is migrated once): daphne and workers in their own
processes, on their own database and Redis database."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.stack import FaultStack

# Short leases and frequent reconciles keep each fault test to seconds; bench/faults.py measures the defaults.
FAST_RECOVERY = {
    "CHAT_LEASE_SECONDS": "3",
    "CHAT_RECONCILE_SECONDS": "1",
    "INGEST_LEASE_SECONDS": "3",
    "INGEST_RECONCILE_SECONDS": "1",
    "WORKER_LIVE_SECONDS": "10",
    "EMBEDDING_BATCH_SIZE": "1",
    "CHAT_MODEL_BACKEND": "protostar.llm.openai.OpenAIChatModel",
    "LLM_MAX_RETRIES": "0",
    "LLM_TIMEOUT": "5",
    "CHAT_WORKER_THREADS": "8",
}


@pytest.fixture(scope="session")
def llm() -> Iterator:
    from tests.llmserver import LLMTestServer

    server = LLMTestServer(port=0).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def stack(llm) -> Iterator[FaultStack]:
    from django.conf import settings

    built = FaultStack(
        data_dir=Path(os.environ["PROTOSTAR_DATA_DIR"]),
        database_url=settings.DATABASE_URL,
        redis_url=settings.REDIS_URL,
        # Beside the servers' own logs, where they outlive pytest's rotation of temporary folders.
        log_dir=Path(os.environ["PROTOSTAR_DATA_DIR"]) / "logs" / f"faults-{os.getpid()}",
        settings={**FAST_RECOVERY, "LLM_BASE_URL": llm.base_url},
    ).create()
    try:
        yield built
    finally:
        built.destroy()


@pytest.fixture(scope="session")
def daphne_port(stack) -> int:
    return stack.start_daphne()[1]


@pytest.fixture
def fresh(stack, llm) -> Iterator[FaultStack]:
    """The stack with no worker left over from the previous test, and the model's default behaviour."""
    llm.reset()
    yield stack
    for proc in stack.processes:
        if proc.name != "daphne":
            proc.stop()
