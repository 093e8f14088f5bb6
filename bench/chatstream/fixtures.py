"""Database and Redis state for a run: the knowledge base, the users' sessions, leftovers of earlier runs."""

from __future__ import annotations

from bench.chatstream.common import KB_CHUNKS, USERS


def ensure_knowledge_base() -> None:
    """Three ready chunks every user may read (like the chat tests), so each answer runs a real retrieval."""
    from knowledge.models import Document
    from tests.knowledge.factories import ready_document

    sha256 = "bench-chat-stream".ljust(64, "0")
    if Document.objects.filter(sha256=sha256, chunks__isnull=False).exists():
        return
    Document.objects.filter(sha256=sha256).delete()
    ready_document(title="Employee Handbook", chunks=KB_CHUNKS, sha256=sha256, file="documents/bench-chat-stream")


def session_cookies(count: int) -> list[str]:
    from django.contrib.auth import get_user_model
    from django.test import Client

    cookies = []
    for i in range(count):
        user, _ = get_user_model().objects.get_or_create(username=USERS.format(i=i))
        client = Client()
        client.force_login(user)
        cookies.append(f"sessionid={client.cookies['sessionid'].value}")
    return cookies


def forget_chat_state() -> None:
    """Jobs and streams left by an interrupted earlier run of this benchmark (own data dir only)."""
    import django_rq

    from chat.streams import sync_client

    django_rq.get_queue("chat").empty()
    conn = sync_client()
    for pattern in ("chat:answer:*", "chat:stop:*", "chat:lease:*"):
        for key in conn.scan_iter(match=pattern, count=500):
            conn.delete(key)
