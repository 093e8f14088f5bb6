from __future__ import annotations

from django import forms


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(item, initial) for item in data]
        return [single(data, initial)]


class UploadForm(forms.Form):
    files = MultipleFileField(label="Files", help_text="PDF, DOCX, Markdown, HTML or plain text; several at once.")


class SearchForm(forms.Form):
    query = forms.CharField(label="Query", max_length=10000)
    k = forms.IntegerField(label="Results", min_value=1, max_value=100, initial=10)
