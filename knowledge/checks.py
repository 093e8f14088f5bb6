"""Refuse to start when the configured embedder's dimension differs from the one frozen in the schema."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, register
from django.utils.module_loading import import_string

from knowledge.models import EMBEDDING_DIMENSIONS


@register()
def check_embedding_dimensions(app_configs, **kwargs) -> list[Error]:
    errors = []
    if settings.EMBEDDING_DIMENSIONS != EMBEDDING_DIMENSIONS:
        errors.append(
            Error(
                f"EMBEDDING_DIMENSIONS is {settings.EMBEDDING_DIMENSIONS} but the chunk table stores "
                f"vector({EMBEDDING_DIMENSIONS}).",
                hint="Use an embedder with the schema's dimension (OpenAI-compatible models accept `dimensions`).",
                id="knowledge.E001",
            )
        )
    try:
        backend = import_string(settings.EMBEDDER_BACKEND)
    except ImportError as exc:
        return [*errors, Error(f"EMBEDDER_BACKEND cannot be imported: {exc}", id="knowledge.E002")]
    declared = getattr(backend, "dimensions", None)
    if isinstance(declared, int) and declared != EMBEDDING_DIMENSIONS:
        errors.append(
            Error(
                f"{settings.EMBEDDER_BACKEND} produces {declared}-dimensional vectors; the schema stores "
                f"{EMBEDDING_DIMENSIONS}.",
                id="knowledge.E003",
            )
        )
    return errors
