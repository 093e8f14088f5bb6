"""The chat wire protocol in one place: what the browser may send, what the server answers.

Every frame is a JSON object with a ``type``. Client requests are parsed into frozen dataclasses (or a
``ProtocolError`` carrying the ``error`` event to send back); server events are built by the functions below so the
field names exist only here. ``docs/websocket-protocol.md`` describes the same thing for client authors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

# Server → client event types. ``reset`` tells the client to drop what it showed for a message (see the docs).
ACCEPTED = "accepted"
SOURCES = "sources"
TOKEN = "token"
END = "end"
ERROR = "error"
RESET = "reset"
STREAM_EVENT_TYPES = frozenset({SOURCES, TOKEN, END, ERROR, RESET})
FINAL_EVENT_TYPES = frozenset({END, ERROR})

FinishReason = Literal["stop", "cancelled"]

# What a user reads when an answer fails: one sentence per code, never the technical detail (server addresses,
# exception text), which goes to the log and to the message's ``error_detail`` for staff.
FAILURE_SENTENCES = {
    "unreachable": "The language model could not be reached. Please try again in a moment.",
    "timeout": "The language model took too long to respond. Please try again.",
    "rate_limited": "The language model is busy right now. Please try again in a minute.",
    "server_error": "The language model reported an error. Please try again.",
    "stream_interrupted": "The language model stopped in the middle of the answer. Please try again.",
    "bad_response": "The language model sent a reply that could not be read. Please try again.",
    "auth": "The language model refused this server's credentials. Please tell an administrator.",
    "not_found": "The configured language model does not exist. Please tell an administrator.",
    "bad_request": "The language model rejected the request. Please try again or rephrase the question.",
    "internal": "The answer could not be prepared because of a problem on the server. Please try again.",
    "interrupted": "The answer was interrupted several times and could not be finished. Please ask again.",
}
DEFAULT_FAILURE_SENTENCE = "The answer could not be generated. Please try again."


def failure_sentence(code: str) -> str:
    """The readable sentence shown for a failed answer with ``code``."""
    return FAILURE_SENTENCES.get(code, DEFAULT_FAILURE_SENTENCE)


CLIENT_ID_MAX_CHARS = 64


class Event(TypedDict, total=False):
    type: str
    message: int
    seq: int


# --- client → server ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ask:
    conversation: int | None
    content: str
    client_id: str


@dataclass(frozen=True)
class Stop:
    message: int


@dataclass(frozen=True)
class Resume:
    message: int
    after_seq: int


ClientRequest = Ask | Stop | Resume


class ProtocolError(Exception):
    """A request the server refuses; ``event`` is the ``error`` frame to send (the socket stays open)."""

    def __init__(self, code: str, detail: str, *, message: int | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.message = message

    @property
    def event(self) -> Event:
        return error(code=self.code, detail=self.detail, message=self.message)


def _id(payload: dict[str, Any], name: str, *, nullable: bool = False) -> int | None:
    value = payload.get(name)
    if value is None and nullable:
        return None
    # bool is an int in Python; a JSON true is not an id.
    if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "after_seq" else 1):
        kind = "a non-negative integer" if name == "after_seq" else "a positive integer id"
        raise ProtocolError("invalid", f"'{name}' must be {kind}{' or null' if nullable else ''}.")
    return value


def _ask(payload: dict[str, Any], max_chars: int) -> Ask:
    content = payload.get("content")
    if not isinstance(content, str) or not content.strip():
        raise ProtocolError("invalid", "'content' must be a non-empty string.")
    if len(content) > max_chars:
        raise ProtocolError("too_long", f"The message is {len(content)} characters long; the limit is {max_chars}.")
    client_id = payload.get("client_id", "")
    if not isinstance(client_id, str) or len(client_id) > CLIENT_ID_MAX_CHARS:
        raise ProtocolError("invalid", f"'client_id' must be a string of at most {CLIENT_ID_MAX_CHARS} characters.")
    return Ask(conversation=_id(payload, "conversation", nullable=True), content=content.strip(), client_id=client_id)


def parse_client_request(text: str | None, *, max_chars: int) -> ClientRequest:
    """Turn one text frame into a request, or raise ``ProtocolError`` saying what is wrong with it."""
    if text is None:
        raise ProtocolError("bad_json", "Send text frames containing JSON objects.")
    try:
        payload = json.loads(text)
    except ValueError as exc:
        raise ProtocolError("bad_json", f"The frame is not valid JSON: {exc}.") from exc
    if not isinstance(payload, dict):
        raise ProtocolError("bad_json", "The frame must be a JSON object with a 'type'.")
    kind = payload.get("type")
    if kind == "ask":
        return _ask(payload, max_chars)
    if kind == "stop":
        return Stop(message=_id(payload, "message"))
    if kind == "resume":
        return Resume(message=_id(payload, "message"), after_seq=_id(payload, "after_seq"))
    raise ProtocolError("unknown_type", f"Unknown request type {kind!r}; expected 'ask', 'stop' or 'resume'.")


# --- server → client ----------------------------------------------------------------------------------------


def accepted(*, conversation: int, user_message: int, message: int) -> Event:
    return {"type": ACCEPTED, "conversation": conversation, "user_message": user_message, "message": message}


def error(*, code: str, detail: str, message: int | None = None, seq: int | None = None) -> Event:
    event: Event = {"type": ERROR, "code": code, "detail": detail}
    if message is not None:
        event["message"] = message
    if seq is not None:
        event["seq"] = seq
    return event


def stream_event(kind: str, *, message: int, seq: int, data: dict[str, Any]) -> Event:
    """A ``sources``/``token``/``end``/``error``/``reset`` event as read back from an answer's stream."""
    return {"type": kind, "message": message, "seq": seq, **data}


def sources_data(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"items": items}


def token_data(text: str) -> dict[str, Any]:
    return {"text": text}


def end_data(*, finish_reason: FinishReason, prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {
        "finish_reason": finish_reason,
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens},
    }


def error_data(*, code: str, detail: str) -> dict[str, Any]:
    return {"code": code, "detail": detail}


def reset_data(*, reason: str) -> dict[str, Any]:
    return {"reason": reason}
