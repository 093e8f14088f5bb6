"""One schema for the answer events of both transports: what the socket sends and the SSE stream carries."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from chat import events
from chat.api import sse_frame


def test_every_event_the_server_builds_matches_the_schema():
    built = [
        events.accepted(conversation=1, user_message=2, message=3),
        events.stream_event(events.SOURCES, message=3, seq=1, data=events.sources_data([])),
        events.stream_event(events.TOKEN, message=3, seq=2, data=events.token_data("연차는 ")),
        events.stream_event(
            events.END,
            message=3,
            seq=3,
            data=events.end_data(finish_reason="stop", prompt_tokens=10, completion_tokens=2),
        ),
        events.stream_event(events.RESET, message=3, seq=4, data=events.reset_data(reason="retry")),
        events.error(code="not_found", detail="Message 3 does not exist.", message=3),
        events.error(code="bad_json", detail="Send text frames containing JSON objects."),
        events.error(code="quota_exceeded", detail="Used up.", retry_after=60, reset_at="2026-12-04T00:00:00+00:00"),
    ]
    assert [events.validated(event) for event in built] == built


@pytest.mark.parametrize(
    "event",
    [
        {"type": "token", "message": 3, "seq": 2},
        {"type": "token", "message": 3, "seq": 2, "text": 5},
        {"type": "end", "message": 3, "seq": 3, "finish_reason": "done", "usage": {}},
        {"type": "token", "message": 3, "seq": 2, "text": "x", "extra": 1},
        {"type": "tokens", "message": 3, "seq": 2, "text": "x"},
    ],
)
def test_an_event_outside_the_schema_is_refused(event):
    with pytest.raises(ValidationError):
        events.validated(event)


def test_the_socket_refuses_to_send_a_frame_outside_the_schema():
    from asgiref.sync import async_to_sync

    from chat.consumers import ChatConsumer

    consumer = ChatConsumer()
    consumer.closing = False
    sent = []

    async def send(text_data=None, **kwargs):
        sent.append(text_data)

    async def room() -> bool:
        return True  # no ASGI connection here, so no send buffer to wait for

    consumer.send = send
    consumer._room_to_send = room
    with pytest.raises(ValidationError):
        async_to_sync(consumer.send_event)({"type": "token", "message": 1, "seq": 1})
    assert sent == []


def test_an_sse_frame_carries_the_type_the_seq_as_id_and_the_json():
    frame = sse_frame(events.stream_event(events.TOKEN, message=7, seq=12, data=events.token_data("18일 [S1]")))
    assert frame == ('event: token\nid: 12\ndata: {"type": "token", "message": 7, "seq": 12, "text": "18일 [S1]"}\n\n')
    assert sse_frame(events.error(code="not_found", detail="gone", message=7)).startswith("event: error\ndata: ")
