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
    # The user's id rides along so the job frees the user's slot of the fair dispatch (``chat.dispatch``) when it
    # ends; the job's id stays the answer's, so a reconcile finds it whoever queued it.
    job_id=lambda message_id, user_id=None: f"chat-answer-{message_id}",
    describe=lambda message_id, user_id=None: f"answer message {message_id}",
)


def answer_message(message_id: int, user_id: int | None = None) -> str | None:
    from chat.answering import answer_message as run
    from chat.dispatch import answer_done

    try:
        return run(message_id=message_id)
    finally:
        if user_id is not None:
            # Whatever happened, the user's next queued question may go (``chat.dispatch``).
            answer_done(message_id=message_id, user_id=user_id)
