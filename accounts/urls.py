from __future__ import annotations

from django.urls import path

from accounts import views

app_name = "accounts"
urlpatterns = [
    path("", views.account, name="account"),
    path("keys/", views.key_create, name="key-create"),
    path("keys/<int:key_id>/revoke", views.key_revoke, name="key-revoke"),
]
