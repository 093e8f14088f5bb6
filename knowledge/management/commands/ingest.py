"""``manage.py ingest PATH [PATH …] [--group NAME … | --all-users]``: upload files or folders through the same
service as the admin. Without ``--group`` or ``--all-users`` documents get the default visibility (staff-only)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError

from knowledge.models import Document
from knowledge.services import UploadOutcome, document_upload

FINAL = {Document.Status.READY, Document.Status.FAILED}


class Command(BaseCommand):
    help = "Upload documents (files or folders, recursively) and queue their ingestion."

    def add_arguments(self, parser) -> None:
        parser.add_argument("paths", nargs="+", type=Path)
        parser.add_argument("--wait", action="store_true", help="block until each document is ready or failed")
        parser.add_argument("--json", action="store_true", help="one JSON object per line")
        parser.add_argument("--user", help="record this username as the uploader")
        parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait with --wait")
        audience = parser.add_mutually_exclusive_group()
        audience.add_argument(
            "--group",
            dest="groups",
            action="append",
            default=[],
            metavar="NAME",
            help="readable by this group (repeat for several)",
        )
        audience.add_argument("--all-users", action="store_true", help="readable by every signed-in user")

    def handle(self, *args, **options) -> None:
        user = self._user(options["user"])
        groups = self._groups(options["groups"])
        visibility = Document.Visibility.ALL_USERS if options["all_users"] else None
        results: list[tuple[Path, UploadOutcome]] = []
        for file_path in self._files(options["paths"]):
            results.append((file_path, self._upload(file_path, user, visibility=visibility, groups=groups)))
        if options["wait"]:
            self._wait([o.document.pk for _, o in results if o.status == "queued"], options["timeout"])
        for file_path, outcome in results:
            self._print(file_path, outcome, as_json=options["json"])

    @staticmethod
    def _user(username: str | None):
        if not username:
            return None
        try:
            return get_user_model().objects.get(username=username)
        except get_user_model().DoesNotExist as exc:
            raise CommandError(f"no user named {username!r}") from exc

    @staticmethod
    def _groups(names: list[str]) -> list[Group]:
        groups = list(Group.objects.filter(name__in=names))
        missing = sorted(set(names) - {group.name for group in groups})
        if missing:
            raise CommandError(f"no group named {', '.join(map(repr, missing))}")
        return groups

    @staticmethod
    def _files(paths: list[Path]) -> list[Path]:
        found: list[Path] = []
        for path in paths:
            if path.is_dir():
                found += sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
            elif path.is_file():
                found.append(path)
            else:
                raise CommandError(f"{path}: no such file or folder")
        return found

    @staticmethod
    def _upload(file_path: Path, user, *, visibility: str | None, groups: list[Group]) -> UploadOutcome:
        size = file_path.stat().st_size
        if size > settings.UPLOAD_MAX_BYTES:
            # Refuse before reading the file into memory.
            return UploadOutcome(
                "rejected", reason=f"The file is {size} bytes; the limit is {settings.UPLOAD_MAX_BYTES}."
            )
        return document_upload(
            data=file_path.read_bytes(), filename=file_path.name, uploaded_by=user, visibility=visibility, groups=groups
        )

    @staticmethod
    def _wait(document_ids: list[int], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pending = set(document_ids)
        while pending and time.monotonic() < deadline:
            done = Document.objects.filter(pk__in=pending, status__in=FINAL).values_list("pk", flat=True)
            pending -= set(done)
            if pending:
                time.sleep(0.5)

    def _print(self, file_path: Path, outcome: UploadOutcome, *, as_json: bool) -> None:
        document = Document.objects.filter(pk=outcome.document.pk).first() if outcome.document else None
        status = outcome.status if outcome.status != "queued" else (document.status if document else "deleted")
        row = {
            "id": document.pk if document else None,
            "path": str(file_path),
            "status": status,
            "error": outcome.reason if outcome.status == "rejected" else (document.error if document else ""),
            "pages": document.page_count if document else None,
            "chunks": document.chunk_count if document else None,
        }
        if as_json:
            self.stdout.write(json.dumps(row, ensure_ascii=False))
            return
        detail = row["error"] or (f"{row['pages'] or '-'} pages, {row['chunks']} chunks" if document else "")
        if outcome.status == "duplicate":
            detail = outcome.reason
        self.stdout.write(f"{status:10} #{row['id'] or '-':<6} {file_path}  {detail}")
