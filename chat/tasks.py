"""rq jobs of the chat app (thin: they take ids and call into ``chat.answering``)."""

from __future__ import annotations


def answer_message(message_id: int) -> str | None:
    from chat.answering import answer_message as run

    return run(message_id=message_id)
