"""Writes for the prompts app: new versions, activation, roll back. Admin views and any CLI call these."""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import connection, transaction
from django.utils import timezone

from prompts.errors import PromptError
from prompts.models import PromptActivation, PromptVersion
from prompts.render import check_prompt_body
from prompts.shipped import shipped_prompt


class NothingToRollBackError(PromptError):
    def __init__(self, prompt: str) -> None:
        super().__init__(
            prompt, "nothing to roll back: the shipped default is active and there is no earlier activation."
        )


def prompt_version_create(
    *, name: str, body: str, note: str = "", created_by: AbstractBaseUser | None = None, activate: bool = False
) -> PromptVersion:
    """Save a new version after checking it compiles, uses only declared variables and renders every sample."""
    check_prompt_body(name=name, body=body)
    with transaction.atomic():
        version = PromptVersion.objects.create(name=name, body=body, note=note.strip(), created_by=created_by)
        if activate:
            prompt_version_activate(version_id=version.pk, user=created_by)
    return version


def prompt_version_activate(*, version_id: int, user: AbstractBaseUser | None = None) -> PromptVersion:
    with transaction.atomic():
        version = PromptVersion.objects.get(pk=version_id)
        _lock(version.name)
        version.refresh_from_db(fields=["is_active"])
        if version.is_active:
            return version
        # The shipped declarations may have changed since the version was written: never activate a broken one.
        check_prompt_body(name=version.name, body=version.body)
        _set_active(version.name, version.pk)
        PromptActivation.objects.create(name=version.name, version=version, activated_by=user)
    version.is_active = True
    return version


def prompt_default_activate(*, name: str, user: AbstractBaseUser | None = None) -> None:
    """Make the shipped file active again (recorded, so it can itself be rolled back)."""
    shipped_prompt(name)  # refuses unknown names
    with transaction.atomic():
        _lock(name)
        if not PromptVersion.objects.filter(name=name, is_active=True).exists():
            return
        _set_active(name, None)
        PromptActivation.objects.create(name=name, version=None, activated_by=user)


def prompt_rollback(*, name: str, user: AbstractBaseUser | None = None) -> PromptVersion | None:
    """Undo the latest activation: re-activate what was active before it (None = the shipped default).

    Repeated roll backs walk further down the activation history until the shipped default is active.
    """
    with transaction.atomic():
        _lock(name)
        live = PromptActivation.objects.filter(name=name, rolled_back_at__isnull=True).order_by("-activated_at", "-id")
        entries = list(live.select_related("version")[:2])
        if not entries:
            raise NothingToRollBackError(name)
        current, target = entries[0], (entries[1].version if len(entries) > 1 else None)
        if target is not None:
            check_prompt_body(name=name, body=target.body)
        current.rolled_back_at, current.rolled_back_by = timezone.now(), user
        current.save(update_fields=["rolled_back_at", "rolled_back_by"])
        _set_active(name, target.pk if target else None)
    return target


def _lock(name: str) -> None:
    # Serialises activations of one prompt, even when it has no rows yet to lock: two concurrent activations would
    # otherwise both clear the old flag and one would hit the one-active-per-name constraint.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"prompts.activate:{name}"])


def _set_active(name: str, version_id: int | None) -> None:
    # Clear first: the partial unique index is checked per statement.
    PromptVersion.objects.filter(name=name, is_active=True).exclude(pk=version_id).update(is_active=False)
    if version_id is not None:
        PromptVersion.objects.filter(pk=version_id).update(is_active=True)
