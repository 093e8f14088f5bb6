from __future__ import annotations

from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "chat"

    def ready(self) -> None:
        from chat import checks  # noqa: F401  (registers system checks)
        from chat.selectors import conversation_owner_id, message_owner_id
        from chat.tasks import ANSWER_JOB
        from protostar.logs import register_job_subject
        from summaries.tasks import MEMORY_JOB

        register_job_subject(ANSWER_JOB.function, field="message_id", owner=message_owner_id)
        # A conversation's memory is about the conversation's owner; chat owns conversations, so it says whose.
        register_job_subject(MEMORY_JOB.function, field="conversation_id", owner=conversation_owner_id)
