from __future__ import annotations

from collections.abc import Iterator

import pytest

from prompts.render import clear_caches


@pytest.fixture(autouse=True)
def _fresh_template_caches() -> Iterator[None]:
    # Version ids can repeat across test databases; a compiled template cached in one test must not leak into another.
    clear_caches()
    yield
    clear_caches()


@pytest.fixture
def staff_user(django_user_model):
    return django_user_model.objects.create_user(username="editor", password="pw", is_staff=True)
