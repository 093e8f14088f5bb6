"""Writes for API keys: create (the only time the key exists in clear), revoke, and note when one was used."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from accounts.models import ApiKey

KEY_PREFIX = "psk_"
PREFIX_CHARS = 12
NAME_MAX_CHARS = 100
MAX_EXPIRY_DAYS = 3650
# Writing the last-used time on every request would make each API call a database write; a minute is precise enough.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiKeyError(ValueError):
    """A key request that cannot be granted; the message is meant for the person asking."""


def key_digest(secret: str) -> str:
    # The key is 256 random bits: a fast hash is enough (nothing to brute-force), and lookups stay one index probe.
    return hashlib.sha256(secret.encode()).hexdigest()


def apikey_create(
    *, user: AbstractBaseUser, name: str, scopes: list[str], expires_in_days: int | None = None
) -> tuple[ApiKey, str]:
    """A new key for ``user``; returns the row and the key itself, which is not stored and cannot be shown again."""
    name = " ".join((name or "").split())
    if not name:
        raise ApiKeyError("Give the key a name, so you can tell it from your other keys.")
    if len(name) > NAME_MAX_CHARS:
        raise ApiKeyError(f"A key name can be at most {NAME_MAX_CHARS} characters long.")
    wanted = sorted(set(scopes or []))
    unknown = [scope for scope in wanted if scope not in ApiKey.Scope.values]
    if not wanted or unknown:
        raise ApiKeyError(f"Choose one or more scopes among {', '.join(ApiKey.Scope.values)}.")
    if ApiKey.Scope.MANAGE in wanted and not user.is_staff:
        raise ApiKeyError("Only staff members can create keys with the 'manage' scope.")
    expires_at = None
    if expires_in_days is not None:
        if not 1 <= expires_in_days <= MAX_EXPIRY_DAYS:
            raise ApiKeyError(f"Expiry must be between 1 and {MAX_EXPIRY_DAYS} days.")
        expires_at = timezone.now() + timedelta(days=expires_in_days)
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        user=user,
        name=name,
        prefix=secret[:PREFIX_CHARS],
        digest=key_digest(secret),
        scopes=wanted,
        expires_at=expires_at,
    )
    return key, secret


def apikey_revoke(*, api_key: ApiKey) -> ApiKey:
    """End a key for good (revoking twice keeps the first time)."""
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=api_key.revoked_at)
    return api_key


def apikey_mark_used(*, api_key: ApiKey) -> None:
    now = timezone.now()
    if api_key.last_used_at is not None and now - api_key.last_used_at < LAST_USED_RESOLUTION:
        return
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
    api_key.last_used_at = now
