"""Ask a question from the terminal through the same service, queue and answer stream as the browser."""

from __future__ import annotations

import json
import uuid

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from chat import events, services, streams


class Command(BaseCommand):
    help = "Ask the knowledge base a question; prints the answer as it streams, then its sources."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("question")
        parser.add_argument("--conversation", type=int, default=None, help="Continue this conversation.")
        parser.add_argument("--user", default=None, help="Ask as this username (default: the first superuser).")
        parser.add_argument("--json", action="store_true", help="Print one JSON event per line instead of text.")

    def handle(self, *args, question: str, conversation: int | None, user: str | None, **options) -> None:
        asker = _user(user)
        try:
            result = services.conversation_ask(
                user=asker, content=question, conversation_id=conversation, client_id=uuid.uuid4().hex
            )
        except services.ChatError as exc:
            raise CommandError(exc.detail) from exc
        accepted = events.accepted(
            conversation=result.conversation_id, user_message=result.user_message_id, message=result.message_id
        )
        emit = self._emit_json if options["json"] else self._emit_text
        emit(accepted)
        conn = streams.sync_client()
        try:
            for seq, kind, data in streams.follow_sync(conn, result.message_id):
                emit(events.stream_event(kind, message=result.message_id, seq=seq, data=data))
        except KeyboardInterrupt:
            services.message_request_stop(user=asker, message_id=result.message_id)
            raise CommandError(f"Stopped; message {result.message_id} keeps the partial answer.") from None

    def _emit_json(self, event: dict) -> None:
        self.stdout.write(json.dumps(event, ensure_ascii=False))
        if event["type"] == events.ERROR:
            raise CommandError(event["detail"])

    def _emit_text(self, event: dict) -> None:
        kind = event["type"]
        if kind == events.SOURCES:
            self._sources = event["items"]
        elif kind == events.RESET:
            self.stdout.write("\n[the answer restarted]")
        elif kind == events.TOKEN:
            self.stdout.write(event["text"], ending="")
            self.stdout.flush()
        elif kind == events.END:
            self.stdout.write("" if event["finish_reason"] == "stop" else "\n[stopped]")
            for item in getattr(self, "_sources", []):
                page = f", p. {item['page']}" if item.get("page") else ""
                self.stdout.write(f"[{item['label']}] {item['title']}{page}")
        elif kind == events.ERROR:
            raise CommandError(event["detail"])


def _user(username: str | None):
    users = get_user_model().objects.filter(is_active=True)
    found = users.filter(username=username).first() if username else users.filter(is_superuser=True).first()
    if found is None:
        raise CommandError(f"No active user {username!r}." if username else "No superuser: pass --user.")
    return found
