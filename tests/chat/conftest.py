"""Chat fixtures: the scripted LLM server, one real chat worker process, users with sessions, a small knowledge base."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from channels.testing import WebsocketCommunicator

from tests.conftest import WorkerProcess

ORIGIN = b"http://127.0.0.1"
WORKER_CLASS = "chat.worker.ThreadedWorker"
CHUNKS = [
    ("Leave policy", "Full-time employees accrue 1.5 days of paid leave per month, up to 18 days a year."),
    ("Remote work", "Employees may work remotely up to three days a week with their manager's approval."),
    ("휴가 규정", "정규직 직원은 매월 1.5일의 유급휴가가 발생하며 연간 최대 18일까지 적립됩니다."),
]


@pytest.fixture(scope="session")
def llm_server() -> Iterator:
    from protostar.llm.testserver import LLMTestServer

    server = LLMTestServer(port=0).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def chat_worker(django_db_setup, django_db_blocker, llm_server, tmp_path_factory) -> Iterator[WorkerProcess]:
    """The one process serving the ``chat`` queue in these tests (a second one would take half of the jobs)."""
    env = {
        "LLM_BASE_URL": llm_server.base_url,
        "CHAT_MODEL_BACKEND": "protostar.llm.openai.OpenAIChatModel",
        "LLM_MAX_RETRIES": "0",
        "LLM_TIMEOUT": "2",
        "CHAT_WORKER_THREADS": "32",
    }
    log = tmp_path_factory.mktemp("chat-worker") / "chat.log"
    with django_db_blocker.unblock():
        worker = WorkerProcess(["chat"], log_path=log, extra_env=env, worker_class=WORKER_CLASS).start()
    yield worker
    worker.stop()


@pytest.fixture(scope="session", autouse=True)
def forget_answer_streams() -> None:
    """Message ids start again with each test database; streams left in Redis by an earlier run must not replay."""
    from chat.streams import sync_client

    conn = sync_client()
    for pattern in ("chat:answer:*", "chat:stop:*", "chat:lease:*"):
        for key in conn.scan_iter(match=pattern, count=500):
            conn.delete(key)


@pytest.fixture
def llm(llm_server):
    llm_server.reset()
    yield llm_server
    llm_server.reset()


@pytest.fixture
def knowledge_base(db):
    """Three ready chunks (English and Korean) every signed-in user may read, embedded like ingestion does."""
    from tests.knowledge.factories import ready_document

    return ready_document(title="Employee Handbook", chunks=CHUNKS)


def session_cookie(client, user) -> bytes:
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


def communicator(cookie: bytes | None = None, origin: bytes = ORIGIN) -> WebsocketCommunicator:
    from protostar.asgi import application

    headers = [(b"host", b"127.0.0.1"), (b"origin", origin)]
    if cookie:
        headers.append((b"cookie", cookie))
    return WebsocketCommunicator(application, "/ws/chat/", headers=headers)


async def send(comm: WebsocketCommunicator, payload: dict) -> None:
    await comm.send_to(text_data=json.dumps(payload, ensure_ascii=False))


async def receive(comm: WebsocketCommunicator, timeout: float = 10) -> dict:
    return json.loads(await comm.receive_from(timeout=timeout))


async def receive_until(comm: WebsocketCommunicator, types: set[str], timeout: float = 30) -> list[dict]:
    """Events up to and including the first one whose type is in ``types``."""
    received = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        event = await receive(comm, timeout=max(0.1, deadline - loop.time()))
        received.append(event)
        if event["type"] in types:
            return received


@pytest.fixture
def caps_lifted(settings):
    """One user asking many questions at once, for tests about concurrency rather than the per-user caps."""
    settings.CHAT_ASKS_PER_MINUTE = 0
    settings.CHAT_MAX_OPEN_ANSWERS = 0
    settings.CHAT_MAX_SOCKETS_PER_USER = 0
    settings.CHAT_MAX_READERS_PER_USER = 0
    settings.CHAT_USER_ACTIVE_ANSWERS = 1000
    return settings
