"""Reads for API keys."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.models import ApiKey
from accounts.services import KEY_PREFIX, key_digest


def apikey_get_active(*, secret: str) -> ApiKey | None:
    """The live key ``secret`` names (not revoked, not expired, its user active), or ``None``."""
    if not secret or not secret.startswith(KEY_PREFIX) or len(secret) > 200:
        return None
    return (
        ApiKey.objects.select_related("user")
        .filter(digest=key_digest(secret), revoked_at__isnull=True, user__is_active=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()))
        .first()
    )


def apikeys_for_user(*, user: AbstractBaseUser) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(user=user).order_by("-created_at")


def apikey_get_for_user(*, user: AbstractBaseUser, key_id: int) -> ApiKey | None:
    return ApiKey.objects.filter(user=user, pk=key_id).first()


def apikey_find(*, ref: str) -> ApiKey | None:
    """A key by id or by the prefix shown on the account page (for the command line)."""
    if ref.isdigit():
        return ApiKey.objects.filter(pk=int(ref)).first()
    matches = list(ApiKey.objects.filter(prefix=ref[:12])[:2]) if ref.startswith(KEY_PREFIX) else []
    return matches[0] if len(matches) == 1 else None
