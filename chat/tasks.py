"""rq jobs of the chat app (thin: they take ids and call into ``chat.answering``), and how each is queued."""

from __future__ import annotations

from rq import Retry

from protostar.queues import JobKind

# An answer whose run died is normally re-run within seconds by the chat workers' reconcile (``chat.recovery``);
# rq's own retry of the abandoned job comes much later and then finds the answer finished (the job is safe to run
# twice). The number of runs an answer gets is bounded by ``CHAT_ANSWER_MAX_ATTEMPTS`` either way.
ANSWER_JOB = JobKind(
    queue="chat",
    function="chat.tasks.answer_message",
    timeout_setting="CHAT_JOB_TIMEOUT",
    retry=Retry(max=2, interval=[1, 5]),
    job_id=lambda message_id: f"chat-answer-{message_id}",
    describe=lambda message_id: f"answer message {message_id}",
)


def answer_message(message_id: int) -> str | None:
    from chat.answering import answer_message as run

    return run(message_id=message_id)
