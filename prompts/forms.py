from __future__ import annotations

from django import forms

from prompts.errors import PromptError
from prompts.render import check_prompt_body
from prompts.shipped import shipped_prompts


class PromptVersionForm(forms.Form):
    name = forms.ChoiceField(label="Prompt")
    body = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 30, "cols": 110, "spellcheck": "false", "class": "prompt-body"}),
        strip=False,
        help_text="Django template syntax, not HTML-escaped. Only the variables the shipped file declares are allowed.",
    )
    note = forms.CharField(max_length=500, help_text="Why this change: shown in the version history.")
    activate = forms.BooleanField(required=False, label="Activate this version now")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["name"].choices = [(name, name) for name in shipped_prompts()]

    def clean(self) -> dict:
        cleaned = super().clean()
        if "name" in cleaned and "body" in cleaned:
            try:
                check_prompt_body(name=cleaned["name"], body=cleaned["body"])
            except PromptError as exc:
                self.add_error("body", _readable(exc))
        return cleaned


def _readable(exc: PromptError) -> str:
    # The form already shows which prompt it is; drop the "Prompt 'x': " prefix of the exception message.
    return str(exc).split(": ", 1)[-1]
