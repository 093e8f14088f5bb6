"""``manage.py reprocess [ID …] [--stale] [--all]``: queue documents for ingestion again (new chunking, windows,
a different embedder), the same as the admin's "reprocess" action."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from knowledge import selectors
from knowledge.models import Document
from knowledge.services import document_reprocess


class Command(BaseCommand):
    help = "Queue documents for ingestion again: by id, --stale (ready but without sentence windows) or --all."

    def add_arguments(self, parser) -> None:
        parser.add_argument("ids", nargs="*", type=int, help="document ids")
        parser.add_argument("--stale", action="store_true", help="ready documents ingested without sentence windows")
        parser.add_argument("--all", action="store_true", help="every ready or failed document")
        parser.add_argument("--dry-run", action="store_true", help="list what would be queued, queue nothing")

    def handle(self, *args, **options) -> None:
        documents = self._select(options["ids"], stale=options["stale"], everything=options["all"])
        for document in documents:
            self.stdout.write(f"{document.pk}\t{document.title}")
            if not options["dry_run"]:
                document_reprocess(document=document)
        verb = "Would queue" if options["dry_run"] else "Queued"
        self.stdout.write(self.style.SUCCESS(f"{verb} {len(documents)} document(s) for reprocessing."))

    @staticmethod
    def _select(ids: list[int], *, stale: bool, everything: bool) -> list[Document]:
        if sum([bool(ids), stale, everything]) != 1:
            raise CommandError("Give document ids, --stale or --all (exactly one of them).")
        if stale:
            return list(selectors.documents_without_windows())
        if everything:
            final = [Document.Status.READY, Document.Status.FAILED]
            return list(Document.objects.filter(status__in=final).order_by("pk"))
        found = {document.pk: document for document in Document.objects.filter(pk__in=ids)}
        missing = sorted(set(ids) - set(found))
        if missing:
            raise CommandError(f"No document with id {', '.join(map(str, missing))}.")
        return [found[pk] for pk in ids]
