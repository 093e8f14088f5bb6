"""API keys: made on the account page (shown once, stored hashed), scoped, expiring, revocable there, in the admin and
from the command line; a revoked or expired key is refused by the live API."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from accounts import services
from accounts.models import ApiKey
from tests.live import api_client, api_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("key-owner", password="pw-123456")


def test_the_account_page_shows_a_new_key_once_and_stores_only_its_hash(client, user):
    client.force_login(user)
    created = client.post(reverse("accounts:key-create"), {"name": "노트북 스크립트", "scopes": ["read", "ask"]})
    assert created.status_code == 200
    secret = created.context["new_key"]
    assert secret.startswith("psk_") and secret in created.content.decode()
    key = ApiKey.objects.get(user=user)
    assert key.digest == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in {key.digest, key.prefix} and key.scopes == ["ask", "read"] and key.expires_at is None
    again = client.get(reverse("accounts:account")).content.decode()
    assert "노트북 스크립트" in again and key.prefix in again and secret not in again


def test_the_account_page_refuses_bad_requests_and_manage_keys_for_non_staff(client, user):
    client.force_login(user)
    for data in (
        {"name": "", "scopes": ["read"]},
        {"name": "x", "scopes": []},
        {"name": "x", "scopes": ["manage"]},
        {"name": "x", "scopes": ["read"], "expires_in_days": "soon"},
    ):
        response = client.post(reverse("accounts:key-create"), data)
        assert response.status_code == 400 and response.context["error"]
    assert not ApiKey.objects.exists()
    assert "manage" not in client.get(reverse("accounts:account")).content.decode().split("Create a key")[1]


def test_a_user_revokes_their_own_key_but_not_another_users(client, user, django_user_model):
    mine, _ = services.apikey_create(user=user, name="mine", scopes=["read"])
    other = django_user_model.objects.create_user("someone-else", password="pw-123456")
    theirs, _ = services.apikey_create(user=other, name="theirs", scopes=["read"])
    client.force_login(user)
    assert client.post(reverse("accounts:key-revoke", args=[theirs.pk])).status_code == 404
    assert client.post(reverse("accounts:key-revoke", args=[mine.pk])).status_code == 302
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.state == "revoked" and theirs.state == "active"


def test_the_command_creates_a_key_with_expiry_and_revokes_it(user):
    out = StringIO()
    call_command("apikey", "create", "--user", user.username, "--scope", "ask", "--expires", "7", stdout=out)
    secret = out.getvalue().strip()
    key = ApiKey.objects.get(user=user)
    assert key.digest == services.key_digest(secret) and key.scopes == ["ask"]
    assert timedelta(days=6, hours=23) < key.expires_at - timezone.now() <= timedelta(days=7)
    call_command("apikey", "revoke", key.prefix, stdout=StringIO())
    key.refresh_from_db()
    assert key.state == "revoked"
    with pytest.raises(CommandError):
        call_command("apikey", "create", "--user", "nobody", "--scope", "ask", stdout=StringIO())
    with pytest.raises(CommandError):
        call_command("apikey", "create", "--user", user.username, "--scope", "manage", stdout=StringIO())


def test_staff_list_and_revoke_every_key_in_the_admin(client, user, django_user_model):
    key, secret = services.apikey_create(user=user, name="cron job", scopes=["read"])
    admin = django_user_model.objects.create_superuser("key-admin", password="pw-123456")
    client.force_login(admin)
    listing = client.get(reverse("admin:accounts_apikey_changelist")).content.decode()
    assert "cron job" in listing and key.prefix in listing and secret not in listing
    client.post(
        reverse("admin:accounts_apikey_changelist"),
        {"action": "revoke_selected", "_selected_action": [key.pk]},
    )
    key.refresh_from_db()
    assert key.state == "revoked"


@pytest.mark.django_db(transaction=True)
def test_the_live_api_refuses_revoked_and_expired_keys_and_records_last_use(api_server, user):
    good = api_key(user, "read")
    revoked = api_key(user, "read")
    expired = api_key(user, "read")
    services.apikey_revoke(api_key=ApiKey.objects.get(prefix=revoked[:12]))
    ApiKey.objects.filter(prefix=expired[:12]).update(expires_at=timezone.now() - timedelta(seconds=1))
    with api_client(api_server, good) as client:
        assert client.get("/api/v1/documents").status_code == 200
    for secret in (revoked, expired, "psk_forged", ""):
        with api_client(api_server, secret) as client:
            response = client.get("/api/v1/documents")
            assert response.status_code == 401
            assert response.json()["code"] == "unauthenticated"
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert ApiKey.objects.get(prefix=good[:12]).last_used_at is not None
    assert ApiKey.objects.get(prefix=revoked[:12]).last_used_at is None
