"""rq jobs of the chat app (thin: they take ids and call into ``chat.answering``)."""

from __future__ import annotations


def answer_message(message_id: int, user_id: int | None = None) -> str | None:
    from chat.answering import answer_message as run
    from chat.dispatch import answer_done

    try:
        return run(message_id=message_id)
    finally:
        if user_id is not None:
            # Whatever happened, the user's next queued question may go (``chat.dispatch``).
            answer_done(message_id=message_id, user_id=user_id)
