"""Fair queueing of answer jobs: a per-user admission limit in front of the shared ``chat`` queue.

The ``chat`` queue is first-in-first-out: a user who asks 1,000 questions at once would stand in front of everyone
else. So each user has at most ``CHAT_USER_ACTIVE_ANSWERS`` jobs in the queue or running; the rest wait in the user's
own backlog in Redis and move to the queue one by one as that user's answers finish. Another user's question then
waits for at most that many of the flooder's jobs, not for all of them.

Redis per user: ``chat:fair:active:<user>`` (sorted set: message id → when its slot lapses, so a job lost with its
worker frees its slot by itself) and ``chat:fair:backlog:<user>`` (list of message ids). Both scripts are atomic, so
concurrent asks and finishing jobs never hand out more slots than the limit.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings

from protostar import queues

logger = logging.getLogger(__name__)

# KEYS: active, backlog. ARGV: now (s), slot lifetime (s), limit, message id to add to the backlog ('' for none),
# message id whose slot is freed ('' for none). Returns the message ids that got a slot (to enqueue now).
_DISPATCH = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if ARGV[5] ~= '' then redis.call('ZREM', KEYS[1], ARGV[5]) end
if ARGV[4] ~= '' then redis.call('RPUSH', KEYS[2], ARGV[4]) end
local admitted = {}
while redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) do
  local next_id = redis.call('LPOP', KEYS[2])
  if not next_id then break end
  redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[2]), next_id)
  table.insert(admitted, next_id)
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
if redis.call('LLEN', KEYS[2]) > 0 then redis.call('EXPIRE', KEYS[2], 86400) end
return admitted
"""


def active_key(user_id: int) -> str:
    return f"chat:fair:active:{user_id}"


def backlog_key(user_id: int) -> str:
    return f"chat:fair:backlog:{user_id}"


def _slot_seconds() -> int:
    # Queue wait plus the run: a slot outlives any job that is still alive.
    return 2 * settings.CHAT_JOB_TIMEOUT + 60


def _run(user_id: int, *, add: int | None = None, done: int | None = None) -> list[int]:
    conn = queues.connection("chat")
    args = [int(time.time()), _slot_seconds(), settings.CHAT_USER_ACTIVE_ANSWERS, add or "", done or ""]
    admitted = conn.eval(_DISPATCH, 2, active_key(user_id), backlog_key(user_id), *args)
    return [int(message_id) for message_id in admitted]


def _enqueue(message_ids: list[int], user_id: int) -> None:
    from chat.services import answer_enqueue

    for message_id in message_ids:
        answer_enqueue(message_id=message_id, user_id=user_id)


def answer_submit(*, message_id: int, user_id: int) -> None:
    """Queue the answer job now if the user has a free slot, else put it in the user's backlog."""
    _enqueue(_run(user_id, add=message_id), user_id)


def answer_done(*, message_id: int, user_id: int) -> None:
    """The job of ``message_id`` ended (answered, failed, backed off or found nothing to do): free its slot and
    queue the user's next answers. Freeing a slot twice (a job run twice) frees nothing the second time."""
    _enqueue(_run(user_id, done=message_id), user_id)


def backlog_length(*, user_id: int) -> int:
    return int(queues.connection("chat").llen(backlog_key(user_id)))
