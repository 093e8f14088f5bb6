"""``POST /v1/chat/completions`` and ``GET /v1/models``: any OpenAI client (the official SDK unchanged) asks our
knowledge base. Citations come as ``[S1]`` in the text and as ``sources`` in the final chunk or the response."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

from django.conf import settings
from django.http import HttpRequest, StreamingHttpResponse
from ninja import Field, Router, Schema
from pydantic import ConfigDict

from accounts.auth import require_scope
from chat import completions, events
from protostar.aio import database
from protostar.api.errors import Refused
from protostar.api.params import Text

router = Router(tags=["openai"])


class OpenAIError(Schema):
    message: str
    type: str
    code: str
    param: str | None = None


class OpenAIErrorOut(Schema):
    error: OpenAIError


ERRORS = {code: OpenAIErrorOut for code in (400, 401, 403, 404, 422)}


class ModelOut(Schema):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str
    description: str


class ModelListOut(Schema):
    object: Literal["list"] = "list"
    data: list[ModelOut]


@router.get("/models", response={200: ModelListOut, **ERRORS}, summary="Models (what answers may draw on)")
def model_list(request: HttpRequest):
    require_scope(request, "read")
    created = 1_700_000_000
    return ModelListOut(
        data=[
            ModelOut(id=name, created=created, owned_by="protostar", description=text)
            for name, text in completions.MODELS.items()
        ]
    )


class TextPart(Schema):
    model_config = ConfigDict(extra="allow")
    type: str
    text: Text | None = None


class ChatMessageIn(Schema):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: Text | list[TextPart] | None = None

    @property
    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text or "" for part in self.content if part.type == "text")
        return self.content or ""


class ChatCompletionIn(Schema):
    # Sampling options (temperature, max_tokens, …) are accepted and left to the server's configuration.
    model_config = ConfigDict(extra="allow")
    model: str = Field(max_length=200)
    messages: list[ChatMessageIn] = Field(min_length=1, max_length=1000)
    stream: bool | None = False


class AssistantMessage(Schema):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(Schema):
    index: int = 0
    message: AssistantMessage
    finish_reason: str


class UsageOut(Schema):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletionOut(Schema):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: UsageOut
    sources: list[events.SourceItem] = Field(description="The passages `[S1]`, `[S2]`, … in the text refer to.")


def _turns(body: ChatCompletionIn) -> list[completions.Turn]:
    if body.model not in completions.MODELS:
        raise Refused(404, "model_not_found", f"The model '{body.model}' does not exist; see GET /v1/models.")
    turns = [completions.Turn(role=message.role, content=message.text) for message in body.messages]
    question = turns[-1]
    if question.role != "user" or not question.content.strip():
        raise Refused(422, "invalid", "the last message must be a non-empty 'user' message.", field="messages")
    if len(question.content) > settings.CHAT_MAX_MESSAGE_CHARS:
        limit = settings.CHAT_MAX_MESSAGE_CHARS
        raise Refused(422, "too_long", f"the question is longer than {limit} characters.", field="messages")
    return turns


@router.post(
    "/chat/completions",
    response={200: ChatCompletionOut, 429: OpenAIErrorOut, 502: OpenAIErrorOut, **ERRORS},
    summary="Answer the last user message (streaming with `stream: true`)",
)
async def chat_completion(request: HttpRequest, body: ChatCompletionIn):
    require_scope(request, "ask")
    turns = _turns(body)
    accepted = await database(completions.completion_ask)(user=request.auth, turns=turns)
    completion_id = f"chatcmpl-{accepted.message_id}"
    if body.stream:
        chunks = _chunks(accepted.message_id, completion_id, body.model, request.auth)
        response = StreamingHttpResponse(chunks, content_type="text/event-stream; charset=utf-8")
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"
        return response
    text = []
    async for piece in completions.answer_pieces(accepted.message_id, request.auth):
        if not piece.finished:
            text.append(piece.text)
            continue
        if piece.error:
            raise Refused(502, piece.error["code"], piece.error["detail"])
        return ChatCompletionOut(
            id=completion_id,
            created=int(time.time()),
            model=body.model,
            choices=[Choice(message=AssistantMessage(content="".join(text)), finish_reason=piece.finish_reason)],
            usage=UsageOut(**piece.usage),
            sources=piece.sources,
        )
    raise Refused(502, "stream_interrupted", "The answer ended without finishing; try again.")


async def _chunks(message_id: int, completion_id: str, model: str, reader: Any) -> AsyncIterator[str]:
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> str:
        body = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            **extra,
        }
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    async for piece in completions.answer_pieces(message_id, reader):
        if not piece.finished:
            yield chunk({"content": piece.text})
        elif piece.error:
            error = {"message": piece.error["detail"], "type": "api_error", "code": piece.error["code"]}
            yield f"data: {json.dumps({'error': error}, ensure_ascii=False)}\n\n"
            return
        else:
            yield chunk({}, piece.finish_reason, usage=piece.usage, sources=piece.sources)
    yield "data: [DONE]\n\n"
