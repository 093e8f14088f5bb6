"""The browser client: one page (conversation list, messages, composer) and the JSON history it switches with.

The page is rendered by Django and driven by static JavaScript (``static/chat/``) over the chat WebSocket. Every
page here sends a Content-Security-Policy that allows scripts only from our own static files, so model output that
slips markup past the sanitiser still cannot run.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.encoding import escape_uri_path
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from chat import export, selectors, services
from chat.models import Conversation, Message
from chat.strings import client_strings

# A number no id reaches, replaced by ``{id}`` so the client can build document links from the URLconf.
_ID_PLACEHOLDER = 987654321


def message_payload(message: Message) -> dict[str, Any]:
    """A stored message as the client renders it (the same fields the socket events carry)."""
    return {
        "id": message.pk,
        "role": message.role,
        "content": message.content,
        "status": message.status,
        "sources": message.sources,
        "error_code": message.error_code,
        "error": message.error,
        "reply_to": message.reply_to_id,
        "superseded": message.superseded,
        "feedback": _feedback_of(message),
    }


def _feedback_of(message: Message) -> dict[str, str] | None:
    feedback = getattr(message, "feedback", None) if message.role == Message.Role.ASSISTANT else None
    return {"rating": feedback.rating, "reason": feedback.reason} if feedback else None


def _conversation_or_404(request: HttpRequest, conversation_id: int) -> Conversation:
    # Someone else's conversation is a 404 like a missing one: ids must not reveal what exists.
    conversation = selectors.conversation_get_for_user(conversation_id=conversation_id, user=request.user)
    if conversation is None:
        raise Http404("No such conversation.")
    return conversation


def _client_config(conversation: Conversation | None) -> dict[str, Any]:
    return {
        "socketPath": "/ws/chat/",
        "maxChars": settings.CHAT_MAX_MESSAGE_CHARS,
        "conversation": conversation.pk if conversation else None,
        "homeUrl": reverse("chat:home"),
        "conversationUrl": reverse("chat:conversation", args=[_ID_PLACEHOLDER]).replace(str(_ID_PLACEHOLDER), "{id}"),
        "messagesUrl": reverse("chat:messages", args=[_ID_PLACEHOLDER]).replace(str(_ID_PLACEHOLDER), "{id}"),
        "renameUrl": reverse("chat:rename", args=[_ID_PLACEHOLDER]).replace(str(_ID_PLACEHOLDER), "{id}"),
        "deleteUrl": reverse("chat:delete", args=[_ID_PLACEHOLDER]).replace(str(_ID_PLACEHOLDER), "{id}"),
        "exportUrl": reverse("chat:export", args=[_ID_PLACEHOLDER]).replace(str(_ID_PLACEHOLDER), "{id}"),
        "searchUrl": reverse("chat:search"),
        "strings": client_strings(),
        "documentUrl": reverse("knowledge:document", args=[_ID_PLACEHOLDER]).replace(str(_ID_PLACEHOLDER), "{id}"),
        "loginUrl": reverse(settings.LOGIN_URL),
    }


@never_cache
@login_required
@require_GET
def home(request: HttpRequest, conversation_id: int | None = None) -> HttpResponse:
    conversation = _conversation_or_404(request, conversation_id) if conversation_id is not None else None
    messages = selectors.conversation_messages(conversation=conversation) if conversation else []
    context = {
        "conversation": conversation,
        "conversations": selectors.conversations_for_user(user=request.user),
        "messages_json": [message_payload(message) for message in messages],
        "config": _client_config(conversation),
        "max_chars": settings.CHAT_MAX_MESSAGE_CHARS,
    }
    return render(request, "chat/home.html", context)


@never_cache
@login_required
@require_GET
def conversation_messages(request: HttpRequest, conversation_id: int) -> JsonResponse:
    conversation = _conversation_or_404(request, conversation_id)
    messages = selectors.conversation_messages(conversation=conversation)
    return JsonResponse(
        {
            "conversation": {"id": conversation.pk, "title": str(conversation)},
            "messages": [message_payload(message) for message in messages],
        }
    )


def _refused(error: services.ChatError) -> JsonResponse:
    return JsonResponse({"error": {"code": error.code, "detail": error.detail}}, status=400)


@never_cache
@login_required
@require_POST
def conversation_rename(request: HttpRequest, conversation_id: int) -> JsonResponse:
    conversation = _conversation_or_404(request, conversation_id)
    try:
        services.conversation_rename(conversation=conversation, title=request.POST.get("title", ""))
    except services.ChatError as error:
        return _refused(error)
    return JsonResponse({"conversation": {"id": conversation.pk, "title": str(conversation)}})


@never_cache
@login_required
@require_POST
def conversation_delete(request: HttpRequest, conversation_id: int) -> JsonResponse:
    conversation = _conversation_or_404(request, conversation_id)
    services.conversation_delete(conversation=conversation)
    return JsonResponse({"deleted": conversation_id})


@never_cache
@login_required
@require_GET
def conversation_export(request: HttpRequest, conversation_id: int) -> HttpResponse:
    conversation = _conversation_or_404(request, conversation_id)
    response = HttpResponse(
        export.conversation_markdown(conversation=conversation), content_type="text/markdown; charset=utf-8"
    )
    name = export.export_filename(conversation)
    response["Content-Disposition"] = (
        f"attachment; filename=\"conversation-{conversation.pk}.md\"; filename*=UTF-8''{escape_uri_path(name)}"
    )
    return response


@never_cache
@login_required
@require_GET
def conversation_search(request: HttpRequest) -> JsonResponse:
    results = selectors.conversations_search(user=request.user, query=request.GET.get("q", ""))
    return JsonResponse({"results": results})
