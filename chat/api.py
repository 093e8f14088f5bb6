"""``/api/v1/conversations``, ``/api/v1/ask`` and ``/api/v1/messages``: chat over HTTP, through the same services as
the socket, and each answer's events as a server-sent event stream that resumes from ``Last-Event-ID``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime

from django.conf import settings
from django.http import HttpRequest, StreamingHttpResponse
from ninja import Field, Header, Path, Query, Router, Schema
from ninja.pagination import paginate
from pydantic import field_validator

from accounts.auth import require_scope
from chat import events, relay, selectors, services
from chat.models import Conversation, Message
from protostar.aio import database
from protostar.api.errors import ERROR_RESPONSES, ErrorOut, Refused
from protostar.api.params import MAX_ID, Pages, Text

router = Router(tags=["chat"])
ERRORS = ERROR_RESPONSES
ObjectId = Path(..., ge=1, le=MAX_ID)


class ConversationOut(Schema):
    id: int
    title: str
    created_at: datetime
    updated_at: datetime


class MessageOut(Schema):
    id: int
    conversation: int = Field(alias="conversation_id")
    role: Message.Role
    content: str
    status: Message.Status
    sources: list[events.SourceItem]
    error_code: str
    error: str
    prompt_tokens: int
    completion_tokens: int
    created_at: datetime
    finished_at: datetime | None


class ConversationDetailOut(ConversationOut):
    messages: list[MessageOut]


@router.get("/conversations", response={200: list[ConversationOut], **ERRORS}, summary="List your conversations")
@paginate(Pages)
def conversation_list(request: HttpRequest):
    require_scope(request, "read")
    return selectors.conversations_page(user=request.auth)


@router.get(
    "/conversations/{conversation_id}", response={200: ConversationDetailOut, **ERRORS}, summary="A conversation"
)
def conversation_get(request: HttpRequest, conversation_id: int = ObjectId):
    require_scope(request, "read")
    conversation = _conversation(request, conversation_id)
    return _detail(request, conversation)


class RenameIn(Schema):
    title: Text = Field(max_length=1000)


@router.patch(
    "/conversations/{conversation_id}", response={200: ConversationOut, **ERRORS}, summary="Rename a conversation"
)
def conversation_rename(request: HttpRequest, body: RenameIn, conversation_id: int = ObjectId):
    require_scope(request, "ask")
    return services.conversation_rename(conversation=_conversation(request, conversation_id), title=body.title)


@router.delete("/conversations/{conversation_id}", response={204: None, **ERRORS}, summary="Delete a conversation")
def conversation_delete(request: HttpRequest, conversation_id: int = ObjectId):
    require_scope(request, "ask")
    services.conversation_delete(conversation=_conversation(request, conversation_id))
    return 204, None


class AskIn(Schema):
    conversation: int | None = Field(
        None, ge=1, le=MAX_ID, description="Continue this conversation; null starts a new one."
    )
    content: Text = Field(description="The question (at most CHAT_MAX_MESSAGE_CHARS characters).")
    client_id: Text = Field(
        "", max_length=events.CLIENT_ID_MAX_CHARS, description="Asking again with the same id returns the first ask."
    )

    @field_validator("content")
    @classmethod
    def _content(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        if len(value) > settings.CHAT_MAX_MESSAGE_CHARS:
            raise ValueError(f"is {len(value)} characters long; the limit is {settings.CHAT_MAX_MESSAGE_CHARS}")
        return value.strip()


class AcceptedOut(Schema):
    conversation: int
    user_message: int
    message: int = Field(description="The assistant message; follow it at events_url.")
    events_url: str


@router.post("/ask", response={202: AcceptedOut, 429: ErrorOut, **ERRORS}, summary="Ask a question")
def ask(request: HttpRequest, body: AskIn):
    """Stores the question and queues its answer; returns at once with the ids (like the socket's ``accepted``)."""
    require_scope(request, "ask")
    result = services.conversation_ask(
        user=request.auth, content=body.content, conversation_id=body.conversation, client_id=body.client_id
    )
    return 202, AcceptedOut(
        conversation=result.conversation_id,
        user_message=result.user_message_id,
        message=result.message_id,
        events_url=f"/api/v1/messages/{result.message_id}/events",
    )


@router.get("/messages/{message_id}", response={200: MessageOut, **ERRORS}, summary="A message")
def message_get(request: HttpRequest, message_id: int = ObjectId):
    require_scope(request, "read")
    message = selectors.message_get_for_user(message_id=message_id, user=request.auth)
    if message is None:
        raise Refused(404, "not_found", f"Message {message_id} does not exist.")
    return _readable(request, [message])[0]


@router.post("/messages/{message_id}/stop", response={202: MessageOut, **ERRORS}, summary="Stop an answer")
def message_stop(request: HttpRequest, message_id: int = ObjectId):
    require_scope(request, "ask")
    return 202, _readable(request, [services.message_request_stop(user=request.auth, message_id=message_id)])[0]


EVENTS_DESCRIPTION = """The answer's events as `text/event-stream`, the same as the socket's (`sources`, `token`, `end`,
`error`, `reset`; schema `AnswerEvent`). Each event has `event:` = its type, `id:` = its `seq` and `data:` = the JSON
object. A client that reconnects with `Last-Event-ID` (or `?after_seq=`; the header wins) receives exactly what came
after it. The
stream ends after `end` or `error`."""


@router.get(
    "/messages/{message_id}/events",
    response=ERROR_RESPONSES,
    summary="Follow an answer (server-sent events)",
    description=EVENTS_DESCRIPTION,
    openapi_extra={
        "responses": {
            "200": {
                "description": "Server-sent events until the answer's `end` or `error`.",
                "content": {"text/event-stream": {"schema": {"$ref": "#/components/schemas/AnswerEventStreamItem"}}},
            }
        }
    },
)
async def message_events(
    request: HttpRequest,
    message_id: int = ObjectId,
    after_seq: int = Query(0, ge=0, le=MAX_ID),
    last_event_id: int | None = Header(None, alias="Last-Event-ID", ge=0, le=MAX_ID),
):
    require_scope(request, "read")
    message = await database(selectors.assistant_message_get_for_user)(message_id=message_id, user=request.auth)
    if message is None:
        raise Refused(404, "not_found", f"Message {message_id} does not exist.")
    after = after_seq if last_event_id is None else last_event_id
    response = StreamingHttpResponse(
        sse_stream(message.pk, after, request.auth), content_type="text/event-stream; charset=utf-8"
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


async def sse_stream(message_id: int, after_seq: int, reader) -> AsyncIterator[str]:
    async for event in relay.follow_events(message_id, after_seq, reader=reader):
        yield sse_frame(events.validated(event))


def sse_frame(event: events.Event) -> str:
    seq = event.get("seq")
    head = f"event: {event['type']}\n" + (f"id: {seq}\n" if seq is not None else "")
    return f"{head}data: {json.dumps(event, ensure_ascii=False)}\n\n"


def _conversation(request: HttpRequest, conversation_id: int = ObjectId) -> Conversation:
    conversation = selectors.conversation_get_for_user(conversation_id=conversation_id, user=request.auth)
    if conversation is None:
        raise Refused(404, "not_found", f"Conversation {conversation_id} does not exist.")
    return conversation


def _readable(request: HttpRequest, messages: list[Message]) -> list[dict]:
    """Stored messages with their sources as the caller may see them now (access may have changed since)."""
    sources = selectors.sources_for_reader(source_lists=[m.sources or [] for m in messages], user=request.auth)
    fields = list(MessageOut.model_fields)
    return [
        {**{name: getattr(m, name) for name in fields if name != "conversation"}, "conversation_id": m.conversation_id}
        | {"sources": items}
        for m, items in zip(messages, sources, strict=True)
    ]


def _detail(request: HttpRequest, conversation: Conversation) -> dict:
    return {
        "id": conversation.pk,
        "title": str(conversation),
        "created_at": conversation.created_at,
        "updated_at": conversation.updated_at,
        "messages": _readable(request, selectors.conversation_messages(conversation=conversation)),
    }
