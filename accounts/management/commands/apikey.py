"""``manage.py apikey create --user NAME --scope ask [--expires DAYS]`` prints a new key; ``apikey revoke REF`` ends
one (REF: the id or the prefix shown on the account page); ``apikey list [--user NAME]`` shows them."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts import selectors, services
from accounts.models import ApiKey


class Command(BaseCommand):
    help = "Create, revoke or list API keys."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="Create a key and print it (it is not shown again).")
        create.add_argument("--user", required=True, help="Username of the key's owner.")
        create.add_argument(
            "--scope", action="append", required=True, choices=ApiKey.Scope.values, help="Repeat for several scopes."
        )
        create.add_argument("--expires", type=int, metavar="DAYS", help="Expire after this many days.")
        create.add_argument("--name", default="command line", help="A name to tell the key apart.")
        revoke = sub.add_parser("revoke", help="Revoke a key.")
        revoke.add_argument("ref", help="The key's id or prefix.")
        listing = sub.add_parser("list", help="List keys (never the keys themselves).")
        listing.add_argument("--user", help="Only this user's keys.")

    def handle(self, *args, action: str, **options) -> None:
        getattr(self, f"_{action}")(**options)

    def _create(self, *, user: str, scope: list[str], expires: int | None, name: str, **_) -> None:
        owner = get_user_model().objects.filter(username=user).first()
        if owner is None:
            raise CommandError(f"No user named {user!r}.")
        try:
            _key, secret = services.apikey_create(user=owner, name=name, scopes=scope, expires_in_days=expires)
        except services.ApiKeyError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(secret)

    def _revoke(self, *, ref: str, **_) -> None:
        key = selectors.apikey_find(ref=ref)
        if key is None:
            raise CommandError(f"No single API key matches {ref!r}.")
        services.apikey_revoke(api_key=key)
        self.stdout.write(f"Revoked {key} of {key.user.get_username()}.")

    def _list(self, *, user: str | None, **_) -> None:
        keys = ApiKey.objects.select_related("user").order_by("pk")
        if user:
            keys = keys.filter(user__username=user)
        for key in keys:
            expires = key.expires_at.isoformat() if key.expires_at else "never"
            self.stdout.write(
                f"{key.pk}\t{key.prefix}\t{key.user.get_username()}\t{','.join(key.scopes)}\t{key.state}\t{expires}"
                f"\t{key.name}"
            )
