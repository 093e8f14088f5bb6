"""``manage.py search "query"``: the ranked chunks the chat would retrieve, for people and for evaluation."""

from __future__ import annotations

import json
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from knowledge.search import SearchError, SearchHit, search_chunks


class Command(BaseCommand):
    help = "Search the knowledge base (hybrid vector + keyword retrieval)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("query", nargs="?")
        parser.add_argument("-k", type=int, default=10)
        parser.add_argument("--json", action="store_true")
        parser.add_argument("--user", help="search as this user (default: the first superuser)")
        parser.add_argument("--queries", type=Path, help="a file with one query per line; prints JSON lines")
        parser.add_argument("--mode", choices=["hybrid", "vector", "keyword", "sparse"], default="hybrid")

    def handle(self, *args, **options) -> None:
        user = self._user(options["user"])
        if options["queries"]:
            for line in options["queries"].read_text(encoding="utf-8").splitlines():
                if line.strip():
                    self._answer(line.strip(), user, options, as_json=True, wrap=True)
            return
        if not options["query"]:
            raise CommandError("give a query or --queries FILE")
        self._answer(options["query"], user, options, as_json=options["json"], wrap=False)

    @staticmethod
    def _user(username: str | None):
        model = get_user_model()
        if username:
            user = model.objects.filter(username=username).first()
            if user is None:
                raise CommandError(f"no user named {username!r}")
            return user
        user = model.objects.filter(is_superuser=True, is_active=True).order_by("pk").first()
        if user is None:
            raise CommandError("no superuser exists: pass --user")
        return user

    def _answer(self, query: str, user, options, *, as_json: bool, wrap: bool) -> None:
        try:
            hits = search_chunks(query=query, user=user, k=options["k"], mode=options["mode"])
        except SearchError as exc:
            if wrap:
                self.stdout.write(json.dumps({"query": query, "error": str(exc), "results": []}, ensure_ascii=False))
                return
            raise CommandError(str(exc)) from exc
        if wrap:
            self.stdout.write(json.dumps({"query": query, "results": [_row(h) for h in hits]}, ensure_ascii=False))
        elif as_json:
            for hit in hits:
                self.stdout.write(json.dumps(_row(hit), ensure_ascii=False))
        else:
            for rank, hit in enumerate(hits, 1):
                page = f" p.{hit.page_label}" if hit.page_label else ""
                self.stdout.write(
                    f"{rank:2}. [{hit.score:.4f} v={hit.vector_rank} w={hit.window_rank} s={hit.sparse_rank}"
                    f" k={hit.keyword_rank}] {hit.title}{page}"
                )
                self.stdout.write(f"    {hit.snippet}")


def _row(hit: SearchHit) -> dict:
    return {
        "chunk_id": hit.chunk_id,
        "document_id": hit.document_id,
        "title": hit.title,
        "original_filename": hit.original_filename,
        "page": hit.page_start,
        "page_end": hit.page_end,
        "section": hit.section,
        "scores": {
            "vector_rank": hit.vector_rank,
            "keyword_rank": hit.keyword_rank,
            "sparse_rank": hit.sparse_rank,
            "window_rank": hit.window_rank,
            "fused": hit.score,
        },
        "text": hit.text,
    }
