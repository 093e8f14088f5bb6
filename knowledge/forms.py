from __future__ import annotations

from django import forms
from django.contrib.auth.models import Group

from knowledge.models import Document


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
    visibility = forms.ChoiceField(
        label="Readable by",
        choices=Document.Visibility.choices,
        # Left out (a script posting files only), the default visibility applies.
        required=False,
        help_text="Documents are private until published: staff only, the groups chosen below, or everyone signed in.",
    )
    groups = forms.ModelMultipleChoiceField(
        label="Groups", queryset=Group.objects.order_by("name"), required=False, widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        from django.conf import settings

        self.fields["visibility"].initial = settings.DOCUMENT_DEFAULT_VISIBILITY

    def clean(self) -> dict:
        from knowledge.services import VisibilityError, document_visibility_resolve

        cleaned = super().clean()
        cleaned["visibility"] = cleaned.get("visibility") or None
        if "groups" in cleaned:
            try:
                document_visibility_resolve(visibility=cleaned["visibility"], groups=cleaned.get("groups") or [])
            except VisibilityError as exc:
                raise forms.ValidationError(str(exc)) from exc
        return cleaned


class DocumentAdminForm(forms.ModelForm):
    """The change form: visibility and groups are checked together, like at upload."""

    class Meta:
        model = Document
        fields = ("title", "visibility", "allowed_groups")

    def clean(self) -> dict:
        from knowledge.services import VisibilityError, document_visibility_resolve

        cleaned = super().clean()
        if "visibility" in cleaned:
            try:
                document_visibility_resolve(
                    visibility=cleaned["visibility"], groups=list(cleaned.get("allowed_groups") or [])
                )
            except VisibilityError as exc:
                raise forms.ValidationError(str(exc)) from exc
        return cleaned


class SearchForm(forms.Form):
    query = forms.CharField(label="Query", max_length=10000)
    k = forms.IntegerField(label="Results", min_value=1, max_value=100, initial=10)
