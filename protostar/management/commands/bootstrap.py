"""First-run provisioning after `migrate`: the storage bucket and an admin account."""

from __future__ import annotations

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from protostar.storage import bucket_ensure


class Command(BaseCommand):
    help = "Create the documents bucket if missing and, on first run, an admin user."

    def handle(self, *args, **options) -> None:
        if bucket_ensure():
            self.stdout.write("created the private documents bucket")
        user_model = get_user_model()
        if user_model.objects.filter(is_superuser=True).exists():
            return
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME", "admin")
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD") or secrets.token_urlsafe(12)
        email = os.environ.get("DJANGO_SUPERUSER_EMAIL", "")
        user_model.objects.create_superuser(username=username, email=email, password=password)
        self.stdout.write(self.style.SUCCESS("Created the first admin user."))
        self.stdout.write(f"  log in at http://127.0.0.1:8000/admin/ as {username!r}")
        if "DJANGO_SUPERUSER_PASSWORD" not in os.environ:
            self.stdout.write(f"  password: {password}   (shown once; change it in the admin)")
