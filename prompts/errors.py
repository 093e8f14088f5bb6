"""Errors raised by the prompts app. Every message names the prompt, so a failure in a job log is actionable."""

from __future__ import annotations

from collections.abc import Iterable


class PromptError(Exception):
    """Base class: anything that stops a prompt from being loaded, validated or rendered."""

    def __init__(self, prompt: str, message: str) -> None:
        self.prompt = prompt
        super().__init__(f"Prompt {prompt!r}: {message}")


class UnknownPromptError(PromptError):
    def __init__(self, prompt: str, known: Iterable[str]) -> None:
        super().__init__(prompt, f"no such prompt (shipped prompts: {', '.join(sorted(known)) or 'none'}).")


class ShippedPromptError(PromptError):
    """A file in prompts/defaults/ is malformed: a deploy problem, reported by the system check."""


class PromptContextError(PromptError):
    """The caller passed variables the prompt does not declare, or left out declared ones."""

    def __init__(self, prompt: str, *, missing: Iterable[str] = (), unknown: Iterable[str] = ()) -> None:
        self.missing = sorted(missing)
        self.unknown = sorted(unknown)
        parts = []
        if self.missing:
            parts.append(f"missing variable(s) {', '.join(self.missing)}")
        if self.unknown:
            parts.append(f"unknown variable(s) {', '.join(self.unknown)}")
        super().__init__(prompt, "; ".join(parts) + ".")


class PromptTemplateError(PromptError):
    """A template body is not acceptable: refused when a version is saved, raised if one slips through at render."""


class PromptSyntaxError(PromptTemplateError):
    def __init__(self, prompt: str, detail: str, line: int | None) -> None:
        self.detail = detail
        self.line = line
        where = f" on line {line}" if line else ""
        super().__init__(prompt, f"template syntax error{where}: {detail}")


class UndeclaredVariableError(PromptTemplateError):
    def __init__(self, prompt: str, names: Iterable[str], declared: Iterable[str]) -> None:
        self.names = sorted(names)
        self.declared = sorted(declared)
        super().__init__(
            prompt,
            f"uses undeclared variable(s) {', '.join(self.names)}; "
            f"declared variables are: {', '.join(self.declared) or 'none'}.",
        )


class ForbiddenTagError(PromptTemplateError):
    def __init__(self, prompt: str, tag: str, line: int | None) -> None:
        self.tag = tag
        where = f" on line {line}" if line else ""
        super().__init__(prompt, f"the {{% {tag} %}} tag is not allowed in prompts{where}.")


class PromptRenderError(PromptTemplateError):
    def __init__(self, prompt: str, detail: str, sample: str | None = None) -> None:
        self.detail = detail
        context = f" with the {sample!r} sample context" if sample else ""
        super().__init__(prompt, f"failed to render{context}: {detail}")
