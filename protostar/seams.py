"""One way to build a seam's getter: the class a dotted-path setting names, built once, forgotten on change.

Each seam declares its getter beside its Protocol (``protostar.llm.base.get_chat_model``,
``chat.rewriting.get_query_rewriter``, ``summaries.summarizers.get_summarizer``)::

    get_chat_model = seam("CHAT_MODEL_BACKEND")

A change to any setting a seam reads (its own, or one of ``VENDOR_SETTINGS`` that its implementations read when
they are built) forgets every built implementation: a rewriter or summarizer holds the chat model it was built with.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar

from django.conf import settings
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

T = TypeVar("T")

# What the vendor implementations read in their constructors (base URLs, models, keys, timeouts).
VENDOR_SETTINGS = frozenset(
    {
        "LLM_BASE_URL",
        "LLM_MODEL",
        "LLM_API_KEY",
        "LLM_TIMEOUT",
        "LLM_MAX_RETRIES",
        "EMBEDDING_BASE_URL",
        "EMBEDDING_MODEL",
        "EMBEDDING_DIMENSIONS",
    }
)

_getters: list[Any] = []
_watched: set[str] = set(VENDOR_SETTINGS)


def seam(setting: str, protocol: type[T], *, wrap: Callable[[T], T] | None = None) -> Callable[[], T]:
    """A cached getter for the implementation named by ``setting`` (``protocol`` types what it returns); ``wrap``,
    when given, is applied once to each built implementation (e.g. to time its calls, whatever the backend)."""

    @cache
    def get() -> T:
        built = import_string(getattr(settings, setting))()
        return wrap(built) if wrap is not None else built

    get.__doc__ = f"The implementation named by ``{setting}``, built on first use."
    _getters.append(get)
    _watched.add(setting)
    return get


def reset() -> None:
    """Forget every built implementation (the next call of each getter builds it again)."""
    for getter in _getters:
        getter.cache_clear()


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in _watched:
        reset()


setting_changed.connect(_on_setting_changed, dispatch_uid="protostar.seams")
