"""A conversation as a Markdown file: its questions and latest answers with their sources, in the reader's language.

Answers are Markdown already and are written as they are; the citation labels ([S1]) stay and point at the source
list under each answer. Titles and snippets come from documents: Markdown in them is escaped so it cannot
restructure the file.
"""

from __future__ import annotations

import re

from django.utils import formats, timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from chat import selectors
from chat.models import Conversation, Message

MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>#|])")


def _escape(text: str) -> str:
    return MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def _source_line(item: dict) -> str:
    title = _escape(item.get("title") or _("Untitled document"))
    page = item.get("page")
    where = " — " + _("p. %(page)s") % {"page": page} if isinstance(page, int) and page > 0 else ""
    line = f"- [{item.get('label', '')}] {title}{where}"
    snippet = item.get("snippet")
    return f"{line}\n  > {_escape(snippet)}" if snippet else line


def _answer_block(answer: Message) -> list[str]:
    heading, failed, empty, stopped, sources = (
        _("Answer"),
        _("The answer could not be completed."),
        _("No answer."),
        _("Stopped"),
        _("Sources"),
    )
    lines = [f"### {heading}", ""]
    if answer.status == Message.Status.FAILED:
        lines.append(f"_{failed}_")
    else:
        lines.append(answer.content.strip() or f"_{empty}_")
        if answer.status == Message.Status.CANCELLED:
            lines += ["", f"_{stopped}_"]
    if answer.sources:
        lines += ["", f"**{sources}**", ""]
        lines += [_source_line(item) for item in answer.sources]
    return lines


def conversation_markdown(*, conversation: Conversation) -> str:
    """The conversation's path as Markdown (the active language decides headings and date formats)."""
    exported = formats.date_format(timezone.localtime(timezone.now()), "DATETIME_FORMAT")
    stamp = _("Exported %(when)s") % {"when": exported}
    question = _("Question")
    lines = [f"# {_escape(str(conversation))}", "", f"_{stamp}_", ""]
    for message in selectors.conversation_path(conversation=conversation):
        if message.role == Message.Role.USER:
            lines += [f"## {question}", "", message.content.strip(), ""]
        else:
            lines += [*_answer_block(message), ""]
    return "\n".join(lines).rstrip() + "\n"


def export_filename(conversation: Conversation) -> str:
    # slugify keeps Hangul (allow_unicode); the header also carries an ASCII fallback name.
    stem = slugify(str(conversation), allow_unicode=True)[:60] or f"conversation-{conversation.pk}"
    return f"{stem}.md"
