"""The shipped prompts: ``prompts/defaults/<name>.md``, a TOML front-matter header between ``+++`` lines, then the body.

The header declares every variable the prompt may use, with a one-line description and one sample value per sample
context (``en``, ``ko``, …); the samples drive the admin preview and the tests. Example::

    +++
    description = "What this prompt is for."

    [variables.question]
    description = "The user's question, verbatim."
    sample.en = "What is the refund window?"
    sample.ko = "환불 기간은 얼마인가요?"
    +++
    Question: {{ question }}
"""

from __future__ import annotations

import functools
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prompts.errors import ShippedPromptError, UnknownPromptError

DEFAULTS_DIR = Path(__file__).resolve().parent / "defaults"
_DELIMITER = "+++"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class VariableSpec:
    name: str
    description: str
    samples: dict[str, Any]


@dataclass(frozen=True)
class ShippedPrompt:
    name: str
    description: str
    variables: dict[str, VariableSpec]
    body: str
    path: Path

    @property
    def sample_names(self) -> list[str]:
        first = next(iter(self.variables.values()), None)
        return list(first.samples) if first else ["default"]

    def sample_context(self, sample: str) -> dict[str, Any]:
        return {name: spec.samples[sample] for name, spec in self.variables.items()}

    def sample_contexts(self) -> dict[str, dict[str, Any]]:
        return {sample: self.sample_context(sample) for sample in self.sample_names}


@functools.cache
def shipped_prompts() -> dict[str, ShippedPrompt]:
    """Every shipped prompt by name. Read once per process: the files change only with a deploy."""
    return {path.stem: load_prompt_file(path) for path in sorted(DEFAULTS_DIR.glob("*.md"))}


def shipped_prompt(name: str) -> ShippedPrompt:
    prompts = shipped_prompts()
    if name not in prompts:
        raise UnknownPromptError(name, prompts)
    return prompts[name]


def load_prompt_file(path: Path) -> ShippedPrompt:
    name = path.stem
    if not _NAME.match(name):
        raise ShippedPromptError(name, f"{path.name}: the file name must be lowercase letters, digits and _.")
    header_text, body = _split_front_matter(name, path.read_text(encoding="utf-8"))
    try:
        header = tomllib.loads(header_text)
    except tomllib.TOMLDecodeError as exc:
        raise ShippedPromptError(name, f"{path.name}: invalid TOML header: {exc}") from exc
    description = header.get("description")
    if not isinstance(description, str) or not description.strip():
        raise ShippedPromptError(name, f"{path.name}: the header needs a non-empty `description`.")
    variables = _variables(name, header.get("variables", {}))
    return ShippedPrompt(name=name, description=description.strip(), variables=variables, body=body, path=path)


def _split_front_matter(name: str, text: str) -> tuple[str, str]:
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != _DELIMITER:
        raise ShippedPromptError(name, f"the file must start with a {_DELIMITER} front-matter line.")
    for index, line in enumerate(lines[1:], start=1):
        if line.strip() == _DELIMITER:
            return "".join(lines[1:index]), "".join(lines[index + 1 :]).strip("\n") + "\n"
    raise ShippedPromptError(name, f"the front matter is not closed by a {_DELIMITER} line.")


def _variables(name: str, table: Any) -> dict[str, VariableSpec]:
    if not isinstance(table, dict):
        raise ShippedPromptError(name, "`variables` must be a table.")
    specs: dict[str, VariableSpec] = {}
    for variable, spec in table.items():
        description = spec.get("description") if isinstance(spec, dict) else None
        samples = spec.get("sample") if isinstance(spec, dict) else None
        if not isinstance(description, str) or not description.strip():
            raise ShippedPromptError(name, f"variable {variable!r} needs a one-line `description`.")
        if not isinstance(samples, dict) or not samples:
            raise ShippedPromptError(name, f"variable {variable!r} needs sample values (`sample.en = …`).")
        specs[variable] = VariableSpec(name=variable, description=description.strip(), samples=samples)
    sample_sets = {tuple(spec.samples) for spec in specs.values()}
    if len(sample_sets) > 1:
        raise ShippedPromptError(name, f"every variable must have the same sample names, got {sorted(sample_sets)}.")
    return specs
