"""``manage.py ingest PATH [PATH …]``: upload files or folders through the same service as the admin."""

from __future__ import annotations

import json
import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import ProgrammingError

from knowledge.models import Document
from knowledge.services import INGEST_JOB, UploadOutcome, document_upload
from protostar.health import workers_by_queue

FINAL = {Document.Status.READY, Document.Status.FAILED}
NO_WORKER = (
    "No knowledge worker is listening, so the documents stay queued until one starts "
    "(`make run`, or `manage.py rqworker knowledge --worker-class knowledge.worker.KnowledgeWorker "
    "--with-scheduler`). Pass --wait-for-worker to keep waiting for one."
)


class Command(BaseCommand):
    help = "Upload documents (files or folders, recursively) and queue their ingestion."

    def add_arguments(self, parser) -> None:
        parser.add_argument("paths", nargs="+", type=Path)
        parser.add_argument("--wait", action="store_true", help="block until each document is ready or failed")
        parser.add_argument("--json", action="store_true", help="one JSON object per line")
        parser.add_argument("--user", help="record this username as the uploader")
        parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait with --wait")
        parser.add_argument(
            "--wait-for-worker",
            action="store_true",
            help="with --wait, keep waiting even when no knowledge worker is listening yet",
        )

    def handle(self, *args, **options) -> None:
        self._check_database()
        user = self._user(options["user"])
        files = self._files(options["paths"])
        # Said before anything is uploaded, so the operator is not left waiting on work nothing will do.
        no_worker = options["wait"] and not options["wait_for_worker"] and not workers_by_queue()[INGEST_JOB.queue]
        if no_worker:
            self.stderr.write(NO_WORKER)
        results: list[tuple[Path, UploadOutcome]] = []
        for file_path in files:
            results.append((file_path, self._upload(file_path, user)))
        if options["wait"] and not no_worker:
            self._wait([o.document.pk for _, o in results if o.status == "queued"], options["timeout"])
        for file_path, outcome in results:
            self._print(file_path, outcome, as_json=options["json"])
        if no_worker:
            raise CommandError("the documents were queued, but no knowledge worker is listening")

    @staticmethod
    def _check_database() -> None:
        try:
            Document.objects.exists()
        except ProgrammingError as exc:
            raise CommandError(
                "The database has no tables yet: run `make migrate` (or `manage.py migrate`) first."
            ) from exc

    @staticmethod
    def _user(username: str | None):
        if not username:
            return None
        try:
            return get_user_model().objects.get(username=username)
        except get_user_model().DoesNotExist as exc:
            raise CommandError(f"no user named {username!r}") from exc

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
    def _upload(file_path: Path, user) -> UploadOutcome:
        size = file_path.stat().st_size
        if size > settings.UPLOAD_MAX_BYTES:
            # Refuse before reading the file into memory.
            return UploadOutcome(
                "rejected", reason=f"The file is {size} bytes; the limit is {settings.UPLOAD_MAX_BYTES}."
            )
        return document_upload(data=file_path.read_bytes(), filename=file_path.name, uploaded_by=user)

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
