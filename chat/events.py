"""The chat wire protocol in one place: what the browser may send, what the server answers.

Every frame is a JSON object with a ``type``. Client requests are parsed into frozen dataclasses (or a
``ProtocolError`` carrying the ``error`` event to send back); server events are built by the functions below so the
field names exist only here. ``docs/websocket-protocol.md`` describes the same thing for client authors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

from django.utils.translation import gettext as _

# Server → client event types. ``reset`` tells the client to drop what it showed for a message (see the docs).
ACCEPTED = "accepted"
FEEDBACK_SAVED = "feedback_saved"
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


@dataclass(frozen=True)
class Regenerate:
    message: int
    client_id: str


@dataclass(frozen=True)
class Edit:
    message: int
    content: str
    client_id: str


@dataclass(frozen=True)
class Feedback:
    message: int
    rating: str
    reason: str
    comment: str


ClientRequest = Ask | Stop | Resume | Regenerate | Edit | Feedback


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
        if name == "after_seq":
            detail = _("'%(name)s' must be a non-negative integer.")
        elif nullable:
            detail = _("'%(name)s' must be a positive integer id or null.")
        else:
            detail = _("'%(name)s' must be a positive integer id.")
        raise ProtocolError("invalid", detail % {"name": name})
    return value


def _content(payload: dict[str, Any], max_chars: int) -> str:
    content = payload.get("content")
    if not isinstance(content, str) or not content.strip():
        raise ProtocolError("invalid", _("'content' must be a non-empty string."))
    if len(content) > max_chars:
        detail = _("The message is %(length)s characters long; the limit is %(limit)s.")
        raise ProtocolError("too_long", detail % {"length": len(content), "limit": max_chars})
    return content.strip()


def _client_id(payload: dict[str, Any]) -> str:
    client_id = payload.get("client_id", "")
    if not isinstance(client_id, str) or len(client_id) > CLIENT_ID_MAX_CHARS:
        detail = _("'client_id' must be a string of at most %(limit)s characters.")
        raise ProtocolError("invalid", detail % {"limit": CLIENT_ID_MAX_CHARS})
    return client_id


def _ask(payload: dict[str, Any], max_chars: int) -> Ask:
    content = _content(payload, max_chars)
    client_id = _client_id(payload)
    return Ask(conversation=_id(payload, "conversation", nullable=True), content=content, client_id=client_id)


def _text_field(payload: dict[str, Any], name: str) -> str:
    value = payload.get(name, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ProtocolError("invalid", _("'%(name)s' must be a string.") % {"name": name})
    return value


def _feedback(payload: dict[str, Any]) -> Feedback:
    message = _id(payload, "message")
    return Feedback(
        message=message,
        rating=_text_field(payload, "rating"),
        reason=_text_field(payload, "reason"),
        comment=_text_field(payload, "comment"),
    )


def parse_client_request(text: str | None, *, max_chars: int) -> ClientRequest:
    """Turn one text frame into a request, or raise ``ProtocolError`` saying what is wrong with it."""
    if text is None:
        raise ProtocolError("bad_json", _("Send text frames containing JSON objects."))
    try:
        payload = json.loads(text)
    except ValueError as exc:
        raise ProtocolError("bad_json", _("The frame is not valid JSON: %(error)s.") % {"error": exc}) from exc
    if not isinstance(payload, dict):
        raise ProtocolError("bad_json", _("The frame must be a JSON object with a 'type'."))
    kind = payload.get("type")
    if kind == "ask":
        return _ask(payload, max_chars)
    if kind == "stop":
        return Stop(message=_id(payload, "message"))
    if kind == "resume":
        return Resume(message=_id(payload, "message"), after_seq=_id(payload, "after_seq"))
    if kind == "regenerate":
        return Regenerate(message=_id(payload, "message"), client_id=_client_id(payload))
    if kind == "edit":
        content = _content(payload, max_chars)
        return Edit(message=_id(payload, "message"), content=content, client_id=_client_id(payload))
    if kind == "feedback":
        return _feedback(payload)
    detail = _("Unknown request type %(type)s; expected 'ask', 'stop', 'resume', 'regenerate', 'edit' or 'feedback'.")
    raise ProtocolError("unknown_type", detail % {"type": repr(kind)})


# --- server → client ----------------------------------------------------------------------------------------


def accepted(*, conversation: int, user_message: int, message: int) -> Event:
    return {"type": ACCEPTED, "conversation": conversation, "user_message": user_message, "message": message}


def feedback_saved(*, message: int, rating: str, reason: str) -> Event:
    return {"type": FEEDBACK_SAVED, "message": message, "rating": rating, "reason": reason}


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
