"""Database and Redis state for a run: the knowledge base, the users' sessions, leftovers of earlier runs."""

from __future__ import annotations

from bench.chatstream.common import KB_CHUNKS, USERS


def ensure_knowledge_base() -> None:
    """Three ready chunks every user may read (like the chat tests), so each answer runs a real retrieval."""
    from knowledge.lexical import search_terms_text
    from knowledge.models import Chunk, Document
    from protostar.llm.registry import get_embedder

    document, created = Document.objects.get_or_create(
        sha256="bench-chat-stream".ljust(64, "0"),
        defaults={
            "title": "Employee Handbook",
            "original_filename": "handbook.txt",
            "file": "documents/bench-chat-stream",
            "content_type": "text/plain",
            "size": 1000,
            "status": Document.Status.READY,
        },
    )
    if not created and document.chunks.exists():
        return
    vectors = get_embedder().embed_passages([text for _, text in KB_CHUNKS])
    offset = 0
    for ordinal, ((section, text), vector) in enumerate(zip(KB_CHUNKS, vectors, strict=True)):
        Chunk.objects.create(
            document=document,
            ordinal=ordinal,
            text=text,
            page_start=ordinal + 1,
            page_end=ordinal + 1,
            section_path=section,
            char_start=offset,
            char_end=offset + len(text),
            token_count=len(text.split()),
            embedding=vector,
            search_terms=search_terms_text(text),
        )
        offset += len(text)


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
