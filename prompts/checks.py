"""System check: every shipped prompt parses, uses only declared variables and renders its sample contexts.

A broken prompt file would otherwise surface only when the first user asks a question.
"""

from __future__ import annotations

from django.core.checks import Error, register

from prompts.errors import PromptError
from prompts.render import check_prompt_body
from prompts.shipped import shipped_prompts


@register()
def check_shipped_prompts(app_configs, **kwargs) -> list[Error]:
    try:
        prompts = shipped_prompts()
    except PromptError as exc:
        return [Error(str(exc), id="prompts.E001")]
    errors = []
    for name, prompt in prompts.items():
        try:
            check_prompt_body(name=name, body=prompt.body)
        except PromptError as exc:
            errors.append(Error(str(exc), obj=str(prompt.path), id="prompts.E002"))
    return errors
