"""Login throttling (django-axes) on the users' and the admin's sign-in pages: a username guessed at from one address
is locked out after AXES_FAILURE_LIMIT failures, even with the right password; other users still sign in."""

from __future__ import annotations

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

PASSWORD = "pw-correct-horse-123"


@pytest.mark.parametrize("url_name", ["login", "admin:login"])
def test_repeated_failures_lock_the_username_out_and_spare_others(client, django_user_model, settings, url_name):
    settings.AXES_FAILURE_LIMIT = 3
    django_user_model.objects.create_user("지민", password=PASSWORD, is_staff=True)
    django_user_model.objects.create_user("other", password=PASSWORD, is_staff=True)
    url = reverse(url_name)
    for attempt in range(3):
        response = client.post(url, {"username": "지민", "password": f"wrong-{attempt}"})
        assert response.status_code in (200, 429)
    locked = client.post(url, {"username": "지민", "password": PASSWORD})
    assert locked.status_code == 429 and "Too many failed sign-in attempts" in locked.content.decode()
    assert "_auth_user_id" not in client.session

    other = client.post(url, {"username": "other", "password": PASSWORD})
    assert other.status_code == 302 and client.session["_auth_user_id"]


def test_a_success_before_the_limit_resets_the_count(client, django_user_model, settings):
    settings.AXES_FAILURE_LIMIT = 3
    django_user_model.objects.create_user("mina", password=PASSWORD)
    url = reverse("login")
    for _ in range(2):
        client.post(url, {"username": "mina", "password": "wrong"})
    assert client.post(url, {"username": "mina", "password": PASSWORD}).status_code == 302
    client.logout()
    for _ in range(2):
        client.post(url, {"username": "mina", "password": "wrong"})
    assert client.post(url, {"username": "mina", "password": PASSWORD}).status_code == 302
