"""Who may ask now: every admission rule of the ask path in one place, shared by the socket and the HTTP API.

``admit_ask`` raises ``Refused`` (a ``ChatError`` with ``code``, a readable ``detail`` and ``retry_after`` seconds)
for the first rule an ask breaks, checked in this order:

- ``too_many_open_answers``: the user already has ``CHAT_MAX_OPEN_ANSWERS`` answers queued or being written;
- ``quota_exceeded``: a daily or monthly limit of the user or one of their groups is used up (``usage``); the refusal
  says when it resets. Checked again by the answer job before it calls the model (``check_quota``);
- ``rate_limited``: more than ``CHAT_ASKS_PER_MINUTE`` asks in the last minute (a sliding window in Redis).

The rate is recorded last, so an ask refused for another reason does not use up the user's rate.
"""

from __future__ import annotations

import math
import time
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from chat.models import Message
from chat.services import ChatError
from protostar import metrics, queues
from usage.selectors import quota_breach

# One sliding-window log per user: drop entries older than the window, refuse when full (returning how long until
# the oldest entry leaves it), else record this ask. KEYS: the log. ARGV: now (ms), window (ms), limit, member.
_RATE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1] - ARGV[2])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return tonumber(oldest[2]) + tonumber(ARGV[2]) - tonumber(ARGV[1])
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return -1
"""
RATE_WINDOW_MS = 60_000
# Open answers are counted while they may still run: one left unfinished far longer than a job may run (its worker
# is gone) stops counting, or one lost job would block its user for good.
STALE_JOB_FACTOR = 4
# A hint for clients refused for open answers: answers usually end within seconds.
OPEN_ANSWERS_RETRY_SECONDS = 5


class Refused(ChatError):
    """An ask that may not proceed now; ``retry_after`` is how many seconds to wait before asking again."""

    def __init__(self, code: str, detail: str, *, retry_after: int, reset_at: str | None = None) -> None:
        super().__init__(code, detail)
        self.retry_after = retry_after
        self.reset_at = reset_at


def rate_key(user_id: int) -> str:
    return f"chat:rate:{user_id}"


def admit_ask(*, user) -> None:
    """Raise ``Refused`` unless ``user`` may ask now; records the ask against the rate when admitted."""
    try:
        check_open_answers(user=user)
        check_quota(user=user)
        record_rate(user=user)
    except Refused as refused:
        metrics.QUOTA_REFUSALS.labels(refused.code).inc()
        raise


def open_answers(*, user) -> int:
    stale_before = timezone.now() - timedelta(seconds=settings.CHAT_JOB_TIMEOUT * STALE_JOB_FACTOR)
    return Message.objects.filter(
        conversation__owner=user,
        role=Message.Role.ASSISTANT,
        status__in=[Message.Status.PENDING, Message.Status.STREAMING],
        created_at__gte=stale_before,
    ).count()


def check_open_answers(*, user) -> None:
    limit = settings.CHAT_MAX_OPEN_ANSWERS
    if limit and open_answers(user=user) >= limit:
        raise Refused(
            "too_many_open_answers",
            f"You already have {limit} answers on the way; ask again when one of them has finished.",
            retry_after=OPEN_ANSWERS_RETRY_SECONDS,
        )


def check_quota(*, user) -> None:
    breach = quota_breach(user=user)
    if breach is None:
        return
    retry_after = max(1, math.ceil((breach.resets_at - timezone.now()).total_seconds()))
    period = "today's" if breach.limit.period == "day" else "this month's"
    whose = "your" if breach.limit.user_id else "your group's"
    raise Refused(
        "quota_exceeded",
        f"{whose.capitalize()} {period} limit of {breach.allowed} {breach.what} is used up; it resets at "
        f"{timezone.localtime(breach.resets_at):%Y-%m-%d %H:%M %Z}.",
        retry_after=retry_after,
        reset_at=breach.resets_at.isoformat(),
    )


def record_rate(*, user) -> None:
    limit = settings.CHAT_ASKS_PER_MINUTE
    if not limit:
        return
    conn = queues.connection("chat")
    now_ms = int(time.time() * 1000)
    member = f"{now_ms}-{time.monotonic_ns()}"
    wait_ms = conn.eval(_RATE, 1, rate_key(user.pk), now_ms, RATE_WINDOW_MS, limit, member)
    if int(wait_ms) >= 0:
        raise Refused(
            "rate_limited",
            f"You can ask {limit} questions a minute; wait a moment before asking again.",
            retry_after=max(1, math.ceil(int(wait_ms) / 1000)),
        )
