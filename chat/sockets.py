"""Bounds of the chat sockets: how many a user may open, how fast a client may send frames, how much may wait for a
client that does not read, and whether the session a socket was opened with still stands."""

from __future__ import annotations

import functools
import time
import uuid
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.utils.crypto import constant_time_compare

# KEYS: the user's socket set. ARGV: now (s), lifetime (s), limit (0: none), socket id. 1 when registered.
_REGISTER = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if tonumber(ARGV[3]) > 0 and redis.call('ZSCORE', KEYS[1], ARGV[4]) == false
   and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[2]), ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""


def sockets_key(user_id: int) -> str:
    return f"chat:sockets:{user_id}"


def new_socket_id() -> str:
    return uuid.uuid4().hex


def _lifetime() -> int:
    # Refreshed at every session check: a socket whose server died stops counting after two missed checks.
    return int(2 * settings.CHAT_SESSION_CHECK_SECONDS) + 5


async def socket_register(client: Any, *, user_id: int, socket_id: str) -> bool:
    """Count this socket among the user's open sockets (all server processes); ``False`` when they have too many."""
    args = [int(time.time()), _lifetime(), settings.CHAT_MAX_SOCKETS_PER_USER, socket_id]
    return bool(await client.eval(_REGISTER, 1, sockets_key(user_id), *args))


async def socket_unregister(client: Any, *, user_id: int, socket_id: str) -> None:
    await client.zrem(sockets_key(user_id), socket_id)


def session_still_valid(*, session_key: str | None, user_id: int) -> bool:
    """Whether the session still signs this user in: not logged out (or expired), the password not changed since
    (Django's session auth hash), the account still active."""
    if not session_key:
        return False
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    data = store.load()
    if str(data.get(SESSION_KEY)) != str(user_id):
        return False
    user = get_user_model()._default_manager.filter(pk=user_id, is_active=True).first()
    if user is None:
        return False
    session_hash = data.get(HASH_SESSION_KEY)
    return bool(session_hash) and constant_time_compare(session_hash, user.get_session_auth_hash())


class FrameBucket:
    """A token bucket over the frames a client sends: ``rate`` per second, bursts up to twice that."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.capacity = 2 * rate
        self.tokens = float(self.capacity)
        self.stamp = time.monotonic()

    def take(self) -> bool:
        if not self.rate:
            return True
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def _server_protocol(send: Any) -> Any:
    """daphne's protocol object behind an ASGI ``send`` (through channels' session wrapper), or ``None``."""
    for _ in range(8):
        if isinstance(send, functools.partial):
            return send.args[0] if send.args else None
        owner = getattr(send, "__self__", None)
        inner = getattr(owner, "real_send", None)
        if inner is None:
            return None
        send = inner
    return None


def pending_bytes(send: Any) -> int | None:
    """Bytes written to this connection that the client has not taken yet (the server's write buffer), or ``None``
    when the server does not tell (then only the number of frames in flight bounds the socket).

    ASGI has no back-pressure on ``websocket.send``: daphne writes every frame to its Twisted transport at once, so a
    client that never reads makes that buffer grow without end. Reading its size is the only way to notice.
    """
    transport = getattr(_server_protocol(send), "transport", None)
    if transport is None:
        return None
    buffered = getattr(transport, "dataBuffer", b"")
    offset = getattr(transport, "offset", 0)
    temp = getattr(transport, "_tempDataLen", 0)
    try:
        return max(0, len(buffered) - offset) + int(temp)
    except TypeError:
        return None
