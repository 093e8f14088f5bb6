"""Ingestion throughput: bare extract + chunk + embed in-process vs the whole path through upload, S3, worker, pgvector.

    .venv/bin/python bench/ingest.py [--pdfs 25 --pages-per-pdf 12 --texts 10] [--case all|throughput|incremental]

Both runs process the same generated corpus (mixed Korean/English PDFs and Markdown) in the same run; the ratio
(end-to-end pages/s ÷ bare pages/s) shows the overhead of everything that is not the embedder. Goal: ≥ 0.9.

The incremental case syncs a folder holding one 300-page PDF (full ingestion through the worker), changes one
sentence on one page, syncs again and times the re-ingestion against the full one. Goal: ≤ 0.05×.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.stack import prepare, start_worker, stop

EN_WORDS = (
    "maintenance schedule pump filter pressure valve inspection report quarterly budget approval contract "
    "employee onboarding security password network server backup recovery incident customer invoice shipment"
).split()
KO_WORDS = (
    "점검 일정 장비 필터 압력 밸브 보고서 분기 예산 승인 계약 직원 교육 보안 비밀번호 네트워크 서버 백업 복구 "
    "장애 고객 청구서 배송 안내 절차 담당자 확인 기준"
).split()


def sentence(rng: random.Random, korean: bool) -> str:
    words = rng.choices(KO_WORDS if korean else EN_WORDS, k=rng.randint(8, 14))
    if korean:
        return " ".join(words) + "을 확인합니다."
    return " ".join(words).capitalize() + f" {rng.randint(1, 9999)}."


def page_text(rng: random.Random, korean: bool, sentences: int = 14) -> str:
    lines = [sentence(rng, korean if rng.random() < 0.8 else not korean) for _ in range(sentences)]
    return "\n".join(lines)


def build_corpus(pdfs: int, pages_per_pdf: int, texts: int) -> list[tuple[str, bytes, int]]:
    from tests.knowledge.pdf_factory import make_pdf

    rng = random.Random(7)
    corpus = []
    for i in range(pdfs):
        korean = i % 2 == 0
        pages = [f"Report {i} page {p + 1}\n" + page_text(rng, korean) for p in range(pages_per_pdf)]
        corpus.append((f"report-{i}.pdf", make_pdf(pages), pages_per_pdf))
    for i in range(texts):
        body = "\n\n".join(f"## Section {s}\n\n{page_text(rng, i % 2 == 1, 10)}" for s in range(4))
        corpus.append((f"notes-{i}.md", f"# Notes {i}\n\n{body}\n".encode(), 1))
    return corpus


def run_bare(corpus) -> tuple[float, int, int]:
    from django.conf import settings

    from knowledge.chunking import chunk_document, sentence_windows
    from knowledge.extraction import detect_content_type, extract
    from knowledge.ingestion import passage_text, window_text
    from knowledge.models import Document
    from protostar.llm.base import get_embedder, get_sparse_embedder

    embedder = get_embedder()
    embedder.embed_passages(["warm-up"])
    sparse = get_sparse_embedder()
    pages = chunks = 0
    started = time.perf_counter()
    for name, data, page_count in corpus:
        doc = extract(data, detect_content_type(data, name), max_pages=10_000, max_chars=10_000_000)
        drafts = chunk_document(
            doc, target_tokens=settings.CHUNK_TARGET_TOKENS, overlap_tokens=settings.CHUNK_OVERLAP_TOKENS
        )
        # The same model passes over the same texts as ingestion: chunks, then their sentence windows (dense and
        # sparse), each with the title and headings in front (the title is the file name, as on upload).
        document = Document(title=name.rsplit(".", 1)[0])
        batch = settings.EMBEDDING_BATCH_SIZE
        for start in range(0, len(drafts), batch):
            part = drafts[start : start + batch]
            embedder.embed_passages([passage_text(document, d) for d in part])
            windows = [
                window_text(document, d, d.text[s:e])
                for d in part
                for s, e in sentence_windows(d.text, target_tokens=settings.SEARCH_WINDOW_TOKENS)
            ]
            if settings.SEARCH_WINDOW_WEIGHT > 0 or sparse is not None:
                embedder.embed_passages(windows)
            if sparse is not None:
                sparse.embed_passages_sparse(windows)
        pages += page_count
        chunks += len(drafts)
    return time.perf_counter() - started, pages, chunks


def run_end_to_end(corpus) -> tuple[float, int, int]:
    from knowledge.models import Document
    from knowledge.services import document_delete, document_upload

    for document in Document.objects.all():
        document_delete(document=document)
    worker = start_worker(["knowledge"], worker_class="knowledge.worker.KnowledgeWorker")
    try:
        started = time.perf_counter()
        ids = [document_upload(data=data, filename=name).document.pk for name, data, _ in corpus]
        while Document.objects.filter(pk__in=ids).exclude(status__in=["ready", "failed"]).exists():
            time.sleep(0.2)
        elapsed = time.perf_counter() - started
    finally:
        stop(worker)
    failed = Document.objects.filter(pk__in=ids, status="failed").count()
    if failed:
        raise SystemExit(f"{failed} documents failed in the end-to-end run")
    pages = sum(p for _, _, p in corpus)
    chunks = sum(Document.objects.filter(pk__in=ids).values_list("chunk_count", flat=True))
    return elapsed, pages, chunks


def _wait_ready(document_filter: dict, timeout: float = 7200) -> None:
    from knowledge.models import Document

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        documents = list(Document.objects.filter(**document_filter))
        if documents and all(d.status in ("ready", "failed") for d in documents):
            if any(d.status == "failed" for d in documents):
                raise SystemExit(f"ingestion failed: {[d.error for d in documents]}")
            return
        time.sleep(0.2)
    raise SystemExit("timed out waiting for the ingestion")


def run_incremental(folder: Path, pages: int, sentences: int) -> dict:
    """Full ingestion of a ``pages``-page PDF from a folder source, then one changed page, both through the worker."""
    from knowledge.models import Chunk, Document, Source
    from knowledge.sources.services import source_delete, source_sync
    from tests.knowledge.pdf_factory import make_pdf

    for old in Source.objects.filter(name="bench-incremental"):
        source_delete(source=old)
    rng = random.Random(300)
    texts = [f"Manual page {p + 1}\n" + page_text(rng, p % 2 == 0, sentences) for p in range(pages)]
    path = folder / "manual.pdf"
    path.write_bytes(make_pdf(texts))
    source = Source.objects.create(name="bench-incremental", kind=Source.Kind.FOLDER, location=str(folder))
    worker = start_worker(["knowledge"], worker_class="knowledge.worker.KnowledgeWorker")
    try:
        started = time.perf_counter()
        source_sync(source_id=source.pk)
        _wait_ready({"source": source})
        full = time.perf_counter() - started
        document = Document.objects.get(source=source)
        before = set(Chunk.objects.filter(document=document).values_list("pk", flat=True))
        middle = pages // 2
        texts[middle] = texts[middle].replace(f"Manual page {middle + 1}", f"Manual page {middle + 1} (revised)")
        path.write_bytes(make_pdf(texts))
        started = time.perf_counter()
        run = source_sync(source_id=source.pk)
        assert run.updated == 1, run.details
        _wait_ready({"pk": document.pk})
        incremental = time.perf_counter() - started
    finally:
        stop(worker)
    after = set(Chunk.objects.filter(document=document).values_list("pk", flat=True))
    return {
        "pages": pages,
        "sentences_per_page": sentences,
        "chunks": len(after),
        "chunks_re_embedded": len(after - before),
        "full_seconds": round(full, 2),
        "incremental_seconds": round(incremental, 2),
        "ratio": round(incremental / full, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pdfs", type=int, default=25)
    parser.add_argument("--pages-per-pdf", type=int, default=12)
    parser.add_argument("--texts", type=int, default=10)
    parser.add_argument("--case", choices=["all", "throughput", "incremental"], default="all")
    parser.add_argument("--incremental-pages", type=int, default=300)
    parser.add_argument("--incremental-sentences", type=int, default=8, help="sentences per page")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object at the end")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-source-"))
    # The folder source must lie under an allowed root, in this process and in the worker it starts.
    os.environ["SOURCE_FOLDER_ROOTS"] = str(folder)
    prepare()
    if args.case in ("all", "incremental"):
        result = run_incremental(folder, args.incremental_pages, args.incremental_sentences)
        if args.json:
            print(json.dumps({"incremental": result}))
        else:
            print(
                f"incremental: {result['pages']} pages, {result['chunks']} chunks; one page changed → "
                f"{result['chunks_re_embedded']} chunks re-embedded; full {result['full_seconds']:.1f} s, "
                f"re-ingest {result['incremental_seconds']:.1f} s; ratio {result['ratio']:.3f}   goal ≤ 0.05"
            )
    if args.case == "incremental":
        return
    corpus = build_corpus(args.pdfs, args.pages_per_pdf, args.texts)
    print(f"corpus: {len(corpus)} files, {sum(p for *_, p in corpus)} pages (PDF pages + 1 per text file)")
    bare = run_bare(corpus)
    e2e = run_end_to_end(corpus)
    print(f"{'run':28} {'seconds':>8} {'pages':>6} {'chunks':>7} {'pages/s':>8} {'chunks/s':>9}")
    for label, (seconds, pages, chunks) in (
        ("(a) bare extract+chunk+embed", bare),
        ("(b) upload→S3→worker→pgvector", e2e),
    ):
        print(f"{label:28} {seconds:8.1f} {pages:6} {chunks:7} {pages / seconds:8.2f} {chunks / seconds:9.2f}")
    ratio = (e2e[1] / e2e[0]) / (bare[1] / bare[0])
    print(f"ratio b/a (pages/s): {ratio:.3f}   goal ≥ 0.9")
    if args.json:
        runs = {"(a) bare extract + chunk + embed": bare, "(b) upload → S3 → worker → pgvector": e2e}
        rows = [
            {"run": label, "seconds": round(seconds, 1), "pages": pages, "chunks": chunks}
            | {"pages/s": round(pages / seconds, 2), "chunks/s": round(chunks / seconds, 2)}
            for label, (seconds, pages, chunks) in runs.items()
        ]
        checks = [{"figure": "ratio b/a (pages/s)", "value": round(ratio, 3), "goal": ">= 0.9"}]
        print(json.dumps({"config": vars(args), "rows": rows, "checks": checks}, ensure_ascii=False))


if __name__ == "__main__":
    main()
