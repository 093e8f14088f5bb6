"""Reads for the prompts app: what is active, the version history, diffs and previews."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from django.db.models import Count, QuerySet

from prompts.errors import PromptError
from prompts.models import PromptActivation, PromptVersion
from prompts.shipped import ShippedPrompt, shipped_prompt, shipped_prompts
from prompts.templating import compile_prompt


@dataclass(frozen=True)
class PromptOverview:
    prompt: ShippedPrompt
    active_version: PromptVersion | None
    version_count: int

    @property
    def name(self) -> str:
        return self.prompt.name

    @property
    def is_default(self) -> bool:
        return self.active_version is None


@dataclass(frozen=True)
class DiffLine:
    kind: str  # "header", "hunk", "added", "removed" or "context": a CSS class in the admin template
    text: str


@dataclass(frozen=True)
class PreviewResult:
    sample: str
    text: str
    error: str


def prompt_active_version_id(*, name: str) -> int | None:
    # Served by the partial unique index on (name) WHERE is_active; order_by() drops the Meta ordering.
    return PromptVersion.objects.filter(name=name, is_active=True).order_by().values_list("pk", flat=True).first()


def prompt_active_version(*, name: str) -> PromptVersion | None:
    return PromptVersion.objects.filter(name=name, is_active=True).select_related("created_by").first()


def prompt_overview() -> list[PromptOverview]:
    """One row per shipped prompt, with its active version (None = the shipped default is active)."""
    active = {v.name: v for v in PromptVersion.objects.filter(is_active=True).select_related("created_by")}
    counts = dict(PromptVersion.objects.order_by().values_list("name").annotate(n=Count("pk")).values_list("name", "n"))
    return [
        PromptOverview(prompt=prompt, active_version=active.get(name), version_count=counts.get(name, 0))
        for name, prompt in shipped_prompts().items()
    ]


def prompt_versions(*, name: str) -> QuerySet[PromptVersion]:
    return PromptVersion.objects.filter(name=name).select_related("created_by").order_by("-created_at", "-id")


def prompt_activations(*, name: str, limit: int = 50) -> list[PromptActivation]:
    queryset = PromptActivation.objects.filter(name=name).select_related("version", "activated_by", "rolled_back_by")
    return list(queryset.order_by("-activated_at", "-id")[:limit])


def prompt_rollback_target(*, name: str) -> tuple[bool, PromptVersion | None]:
    """What roll back would activate: (possible, version). version None means the shipped default."""
    live = PromptActivation.objects.filter(name=name, rolled_back_at__isnull=True).order_by("-activated_at", "-id")
    entries = list(live.select_related("version")[:2])
    if not entries:
        return False, None
    return True, entries[1].version if len(entries) > 1 else None


def prompt_diff(*, old: str, new: str, old_label: str, new_label: str) -> list[DiffLine]:
    """A unified diff as typed lines; the template escapes the text, so prompt bodies stay inert in the page."""
    lines = difflib.unified_diff(
        old.splitlines(), new.splitlines(), fromfile=old_label, tofile=new_label, lineterm="", n=3
    )
    return [DiffLine(kind=_diff_kind(line), text=line) for line in lines]


def _diff_kind(line: str) -> str:
    if line.startswith(("---", "+++")):
        return "header"
    if line.startswith("@@"):
        return "hunk"
    return {"+": "added", "-": "removed"}.get(line[:1], "context")


def prompt_preview(*, name: str, body: str) -> list[PreviewResult]:
    """Render ``body`` with each sample context declared in the shipped file; errors are returned, not raised."""
    prompt = shipped_prompt(name)
    try:
        compiled = compile_prompt(name, body, prompt.variables)
    except PromptError as exc:
        return [PreviewResult(sample="", text="", error=str(exc))]
    results = []
    for sample, context in prompt.sample_contexts().items():
        try:
            results.append(PreviewResult(sample=sample, text=compiled.render(context, sample=sample), error=""))
        except PromptError as exc:
            results.append(PreviewResult(sample=sample, text="", error=str(exc)))
    return results
