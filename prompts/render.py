"""Render the active version of a prompt: the activated PromptVersion if there is one, else the shipped default.

Each call asks the database which version is active (one indexed query), so an activation made in the admin or in
another process is used by the next render, without a restart. Compiled templates are cached by version id, which
is safe because versions are never edited in place.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async

from prompts.errors import PromptContextError
from prompts.models import PromptVersion
from prompts.selectors import prompt_active_version_id
from prompts.shipped import ShippedPrompt, shipped_prompt, shipped_prompts
from prompts.templating import CompiledPrompt, compile_prompt


def render_prompt(name: str, /, **context: Any) -> str:
    """Render prompt ``name`` with exactly its declared variables; raises a ``PromptError`` subclass otherwise."""
    return prompt_renderer(name)(**context)


def prompt_renderer(name: str) -> Callable[..., str]:
    """``render_prompt`` for several renders of one prompt: the active version is looked up once, so they agree."""
    prompt = shipped_prompt(name)
    template = active_template(name)

    def render(**context: Any) -> str:
        check_context(prompt, context)
        return template.render(context)

    return render


# The ORM cannot run in an event loop thread; consumers await this instead.
arender_prompt = sync_to_async(render_prompt)


def check_context(prompt: ShippedPrompt, context: dict[str, Any]) -> None:
    declared = set(prompt.variables)
    missing, unknown = declared - set(context), set(context) - declared
    if missing or unknown:
        raise PromptContextError(prompt.name, missing=missing, unknown=unknown)


def active_template(name: str) -> CompiledPrompt:
    version_id = prompt_active_version_id(name=name)
    return default_template(name) if version_id is None else version_template(version_id)


def check_prompt_body(*, name: str, body: str) -> CompiledPrompt:
    """Compile ``body`` against the declarations of prompt ``name`` and render it with every sample context.

    Raises ``PromptTemplateError`` (syntax, undeclared variable, forbidden tag, render failure) with a readable message.
    """
    prompt = shipped_prompt(name)
    compiled = compile_prompt(name, body, prompt.variables)
    for sample, context in prompt.sample_contexts().items():
        compiled.render(context, sample=sample)
    return compiled


def preload_templates() -> None:
    """Compile every prompt's active template now; a process's first render of each would otherwise wait for it."""
    for name in shipped_prompts():
        active_template(name)


@functools.cache
def default_template(name: str) -> CompiledPrompt:
    prompt = shipped_prompt(name)
    return compile_prompt(name, prompt.body, prompt.variables)


@functools.lru_cache(maxsize=256)
def version_template(version_id: int) -> CompiledPrompt:
    version = PromptVersion.objects.only("name", "body").get(pk=version_id)
    return compile_prompt(version.name, version.body, shipped_prompt(version.name).variables)


def clear_caches() -> None:
    default_template.cache_clear()
    version_template.cache_clear()
