"""The chat page's script strings, translated on the server and handed to the page in its configuration (one
catalogue for templates and scripts; no second JavaScript catalogue to build)."""

from __future__ import annotations

from django.utils.translation import gettext as _
from django.utils.translation import pgettext


def client_strings() -> dict[str, str]:
    return {
        "newConversation": _("New conversation"),
        "searching": _("Searching the documents…"),
        "stopped": _("Stopped"),
        "answerFailed": _("The answer could not be completed."),
        "sources": _("Sources"),
        "untitled": _("Untitled document"),
        "page": _("p. %(page)s"),
        "notASource": _("Not among this answer's sources"),
        "reconnecting": _("Reconnecting…"),
        "noSuchConversation": _("This conversation does not exist."),
        "loadFailed": _("Could not load the conversation (HTTP %(status)s)."),
        "unreachable": _("The server could not be reached; nothing was changed."),
        "refused": _("The change was refused (HTTP %(status)s)."),
        "confirmDelete": _("Delete this conversation and all its answers? This cannot be undone."),
        "copy": _("Copy"),
        "copied": _("Copied"),
        "copyFailed": _("Could not copy; select the text instead."),
        "regenerate": _("Regenerate"),
        "edit": _("Edit"),
        "editLabel": _("Edit your question"),
        "askAgain": _("Ask again"),
        "cancel": _("Cancel"),
        "attempt": _("Answer %(n)s of %(total)s"),
        "previousAttempt": _("Previous answer"),
        "nextAttempt": _("Next answer"),
        "helpful": _("Helpful"),
        "notHelpful": _("Not helpful"),
        "feedbackQuestion": _("What was wrong?"),
        "reasonWrong": _("Wrong"),
        "reasonIncomplete": _("Incomplete"),
        "reasonWrongSource": _("Wrong source"),
        "reasonOutdated": _("Outdated"),
        "reasonOther": _("Other"),
        "comment": _("Comment (optional)"),
        "send": pgettext("feedback", "Send"),
        "thanks": _("Thanks for the feedback."),
        "answering": _("Answering…"),
        "answerReady": _("Answer ready."),
        "answerStopped": _("Answer stopped."),
        "noResults": _("No conversations match."),
        "searchFailed": _("The search could not be run (HTTP %(status)s)."),
        "answerActions": _("Answer actions"),
    }
