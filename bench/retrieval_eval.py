#!/usr/bin/env python
"""Retrieval quality on a golden set: recall@1/5/10 and MRR of vector, keyword and hybrid search.

The corpus is ingested through the product's own path (``document_upload`` then ``document_ingest``, the service
the worker runs), then every question of the golden set is searched with ``search_chunks`` in each mode, as a
dedicated superuser and restricted to the corpus' documents. A result is correct when it comes from the expected
document and its chunk text contains the question's snippet (without a snippet, the document alone counts).

Run against servers of your own data dir::

    export PROTOSTAR_DATA_DIR=$PWD/.data/bench-golden
    .venv/bin/python manage.py services up && .venv/bin/python manage.py migrate && .venv/bin/python manage.py bootstrap
    .venv/bin/python bench/retrieval_eval.py            # ingest (slow: the embedder) and evaluate
    .venv/bin/python bench/retrieval_eval.py --reuse    # keep documents already ready (with sentence windows)
    SEARCH_KEYWORD_WEIGHT=0.5 .venv/bin/python bench/retrieval_eval.py --reuse   # try a ranking setting
    .venv/bin/python bench/retrieval_eval.py --reuse --sweep   # grid over the fusion settings (hybrid only)

Beside the golden set it judges the retrieval test cases staff made from rated answers in the admin (``feedback``
app, "Make retrieval test cases"), when the database holds any: each case's question is searched over every ready
document, and it is found where a hit from the case's document holds the case's snippet. Point ``PROTOSTAR_DATA_DIR``
at the instance whose cases you want (``--feedback-cases-only`` skips the golden set and its ingestion)::

    PROTOSTAR_DATA_DIR=$PWD/.data/dev .venv/bin/python bench/retrieval_eval.py --feedback-cases-only

Corpus layout: ``*.md`` / ``*.txt`` files are uploaded as they are; ``pdf-source/NAME.txt`` becomes ``NAME.pdf``
(built at run time with ``tests/knowledge/pdf_factory.make_pdf``; pages are separated by a ``<<<PAGE>>>`` line).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.golden_set import (
    KINDS,
    LANGS,
    CorpusFile,
    GoldenSetError,
    Question,
    load_corpus,
    load_questions,
    nfc,
)
from bench.stack import prepare

ROOT = prepare("bench-golden")

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.test.utils import override_settings  # noqa: E402

from feedback.evaluation import case_metrics, evaluate_cases  # noqa: E402
from feedback.selectors import retrieval_cases  # noqa: E402
from knowledge.ingestion import document_ingest  # noqa: E402
from knowledge.models import Chunk, Document  # noqa: E402
from knowledge.search import SearchError, SearchHit, search_chunks  # noqa: E402
from knowledge.selectors import documents_without_windows  # noqa: E402
from knowledge.services import document_delete, document_upload  # noqa: E402
from protostar.llm.base import get_embedder  # noqa: E402

BENCH_USER = "bench-retrieval"
MODES = ("vector", "window", "keyword", "sparse", "hybrid")
CUTOFFS = (1, 5, 10)
SEARCH_SETTINGS = (
    "SEARCH_RRF_K",
    "SEARCH_VECTOR_WEIGHT",
    "SEARCH_WINDOW_WEIGHT",
    "SEARCH_KEYWORD_WEIGHT",
    "SEARCH_SPARSE_WEIGHT",
    "SEARCH_CANDIDATES",
    "SEARCH_WINDOW_TOKENS",
    "SEARCH_LANGUAGE_CENTERING",
)
SWEEP_GRID = {
    "SEARCH_RRF_K": (10, 30, 60),
    "SEARCH_VECTOR_WEIGHT": (1.0,),
    "SEARCH_KEYWORD_WEIGHT": (0.5, 0.75, 1.0, 1.5),
    "SEARCH_CANDIDATES": (50, 100),
}


def bench_user():
    user, created = get_user_model().objects.get_or_create(
        username=BENCH_USER, defaults={"is_staff": True, "is_superuser": True, "is_active": True}
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    elif not (user.is_superuser and user.is_active):
        user.is_superuser = user.is_staff = user.is_active = True
        user.save(update_fields=["is_superuser", "is_staff", "is_active"])
    return user


def ingest(corpus: dict[str, CorpusFile], *, user, reuse: bool) -> dict[str, Document]:
    """Upload and ingest every corpus file in this process; returns file name -> ready document."""
    model_name = get_embedder().model_name
    documents: dict[str, Document] = {}
    todo: list[CorpusFile] = []
    # Documents ingested before sentence windows would score zero in the window and sparse lists: ingest them again.
    stale_ids = set(documents_without_windows().values_list("pk", flat=True))
    for item in corpus.values():
        sha = hashlib.sha256(item.data).hexdigest()
        existing = Document.objects.filter(sha256=sha).first()
        if (
            reuse
            and existing
            and existing.status == Document.Status.READY
            and existing.embedding_model == model_name
            and existing.original_filename == item.name
            and existing.pk not in stale_ids
        ):
            documents[item.name] = existing
            continue
        # A stale copy (same bytes, or an older version of the same file uploaded by the bench) goes first.
        stale = Document.objects.filter(sha256=sha) | Document.objects.filter(
            original_filename=item.name, uploaded_by=user
        )
        for document in stale.distinct():
            document_delete(document=document)
        todo.append(item)
    if documents:
        print(f"reusing {len(documents)} ready document(s)")
    if not todo:
        return documents
    total_chars = sum(len(item.text) for item in todo)  # chunks, hence embedder time, follow the text
    print(f"ingesting {len(todo)} document(s) with {model_name} (the embedder is the slow part) …", flush=True)
    started, done_chars, chunks_total = time.monotonic(), 0, 0
    for index, item in enumerate(todo, 1):
        t0 = time.monotonic()
        outcome = document_upload(data=item.data, filename=item.name, uploaded_by=user)
        if outcome.status != "queued" or outcome.document is None:
            raise SystemExit(f"upload of {item.name} was {outcome.status}: {outcome.reason}")
        _drop_queued_job(outcome.document.pk)
        document = document_ingest(document_id=outcome.document.pk)
        if document is None or document.status != Document.Status.READY:
            document = Document.objects.filter(pk=outcome.document.pk).first()
            raise SystemExit(f"ingestion of {item.name} failed: {document.error if document else 'deleted'}")
        documents[item.name] = document
        done_chars += len(item.text)
        chunks_total += document.chunk_count
        elapsed = time.monotonic() - started
        eta = elapsed / done_chars * (total_chars - done_chars)
        took = time.monotonic() - t0
        print(
            f"  [{index:>2}/{len(todo)}] {item.name:<44} {document.chunk_count:>3} chunks in {took:5.1f}s"
            f" ({document.chunk_count / max(took, 1e-6):.1f}/s)  elapsed {elapsed:5.0f}s  eta {eta:4.0f}s",
            flush=True,
        )
    print(f"ingested {chunks_total} chunks in {time.monotonic() - started:.0f}s", flush=True)
    return documents


def _drop_queued_job(document_id: int) -> None:
    """The upload queued a worker job; this process ingests the document itself, so the job is removed."""
    try:
        import django_rq

        queue = django_rq.get_queue("knowledge")
        for job in queue.get_jobs():
            if job.args and job.args[0] == document_id:
                job.delete()
    except Exception as exc:  # a leftover job is harmless: the worker skips ready documents
        print(f"  (could not remove the queued job of document {document_id}: {exc})")


def check_snippets_in_chunks(questions: list[Question], documents: dict[str, Document], *, lenient: bool) -> None:
    """Every snippet must sit inside one chunk, or no result could ever count as correct."""
    texts: dict[int, list[str]] = defaultdict(list)
    for document_id, text in Chunk.objects.filter(document__in=documents.values()).values_list("document_id", "text"):
        texts[document_id].append(nfc(text))
    problems = []
    for question in questions:
        if question.snippet and not any(question.snippet in t for t in texts[documents[question.document].pk]):
            problems.append(f"{question.id}: snippet {question.snippet!r} is in no chunk of {question.document}")
            if lenient:
                question.snippet = ""
    if problems and not lenient:
        raise GoldenSetError([*problems, "(pass --lenient-snippets to judge these questions by document only)"])
    for problem in problems:
        print(f"WARNING {problem}: judged by document only")


# --- evaluation -------------------------------------------------------------------------------------------------


def is_correct(hit: SearchHit, question: Question, expected_id: int) -> bool:
    return hit.document_id == expected_id and (not question.snippet or question.snippet in nfc(hit.text))


def run_mode(questions: list[Question], *, mode: str, user, k: int, document_ids: list[int], ids: dict[str, int]):
    """Search every question in one mode; fills ``question.ranks[mode]``; returns per-query latencies (ms)."""
    latencies = []
    for question in questions:
        t0 = time.perf_counter()
        try:
            hits = search_chunks(query=question.question, user=user, k=k, document_ids=document_ids, mode=mode)
        except SearchError:
            hits = []  # e.g. a keyword search whose query has no searchable terms: a miss like any other
        latencies.append((time.perf_counter() - t0) * 1000)
        expected = ids[question.document]
        question.ranks[mode] = next(
            (rank for rank, hit in enumerate(hits, 1) if is_correct(hit, question, expected)), None
        )
        question.top[mode] = hits[0] if hits else None
    return latencies


def metrics(questions: list[Question], mode: str, k: int) -> dict[str, float | int]:
    ranks = [q.ranks.get(mode) for q in questions]
    out: dict[str, float | int] = {"n": len(ranks)}
    for cutoff in sorted({*CUTOFFS, k}):
        if cutoff <= k:
            out[f"r@{cutoff}"] = sum(1 for r in ranks if r is not None and r <= cutoff) / len(ranks)
    out["mrr"] = sum(1 / r for r in ranks if r is not None) / len(ranks)
    return out


def groups(questions: list[Question]) -> dict[str, list[Question]]:
    out: dict[str, list[Question]] = {"overall": questions}
    for kind in KINDS:
        out[f"kind={kind}"] = [q for q in questions if q.kind == kind]
    for lang in LANGS:
        out[f"lang={lang}"] = [q for q in questions if q.lang == lang]
    for kind, lang in itertools.product(KINDS, LANGS):
        out[f"{kind}/{lang}"] = [q for q in questions if q.kind == kind and q.lang == lang]
    return {name: qs for name, qs in out.items() if qs}


def all_metrics(questions: list[Question], modes: tuple[str, ...], k: int) -> dict[str, dict[str, dict]]:
    return {mode: {name: metrics(qs, mode, k) for name, qs in groups(questions).items()} for mode in modes}


def print_table(table: dict[str, dict[str, dict]], modes: tuple[str, ...]) -> None:
    names = list(next(iter(table.values())).keys())
    columns = ("r@1", "r@5", "r@10", "mrr")
    head = f"{'group':<22}{'n':>4} " + " ".join(f"| {mode:^27}" for mode in modes)
    sub = f"{'':<22}{'':>4} " + " ".join("| " + " ".join(f"{c:>6}" for c in columns) for _ in modes)
    print(head)
    print(sub)
    print("-" * len(sub))
    for name in names:
        if name == "kind=direct" or name == "lang=ko" or name == f"{KINDS[0]}/ko":
            print("-" * len(sub))
        n = table[modes[0]][name]["n"]
        cells = []
        for mode in modes:
            m = table[mode][name]
            cells.append("| " + " ".join(f"{m.get(c, float('nan')):6.3f}" for c in columns))
        print(f"{name:<22}{n:>4} " + " ".join(cells))


def print_misses(questions: list[Question], *, mode: str, cutoff: int, modes: tuple[str, ...]) -> list[str]:
    misses = [q for q in questions if q.ranks.get(mode) is None or q.ranks[mode] > cutoff]
    print(f"\nMisses of {mode}@{cutoff}: {len(misses)} of {len(questions)}")
    for q in misses:
        ranks = "  ".join(f"{m}={q.ranks.get(m) or '-'}" for m in modes)
        top = q.top.get(mode)
        first = f"{top.original_filename} › {top.section or '(no section)'}" if top else "(no results)"
        print(f"- [{q.id}] ({q.kind}/{q.lang}) {q.question}")
        print(f"    expected: {q.document}  snippet: {q.snippet!r}   ranks: {ranks}")
        print(f"    first:    {first}")
        if top:
            print(f"              {' '.join(top.text.split())[:150]}")
    return [q.id for q in misses]


def current_config() -> dict[str, float | int]:
    return {name: getattr(settings, name) for name in SEARCH_SETTINGS}


def memoize_query_embeddings() -> None:
    """Queries repeat across modes and sweep configurations; embedding each once keeps a sweep quick."""
    embedder = get_embedder()
    original = embedder.embed_query
    cache: dict[str, object] = {}

    def embed_query(text: str):
        if text not in cache:
            cache[text] = original(text)
        return cache[text]

    embedder.embed_query = embed_query


def sweep(questions: list[Question], *, user, k: int, document_ids: list[int], ids: dict[str, int]) -> list[dict]:
    keys = list(SWEEP_GRID)
    rows = []
    for values in itertools.product(*(SWEEP_GRID[key] for key in keys)):
        config = dict(zip(keys, values, strict=True))
        with override_settings(**config):
            run_mode(questions, mode="hybrid", user=user, k=k, document_ids=document_ids, ids=ids)
        row = {"config": config, **metrics(questions, "hybrid", k)}
        for kind in KINDS:
            subset = [q for q in questions if q.kind == kind]
            if subset:
                row[f"r@5 {kind}"] = metrics(subset, "hybrid", k)["r@5"]
        rows.append(row)
    rows.sort(key=lambda r: (r["r@5"], r["mrr"]), reverse=True)
    print("\nSweep (hybrid), best first:")
    metric_head = " ".join(f"{name:>6}" for name in ("r@1", "r@5", "r@10", "mrr"))
    print(f"{'rrf_k':>6} {'w_vec':>6} {'w_kw':>6} {'cand':>5} | {metric_head} | r@5 by kind")
    for row in rows:
        c = row["config"]
        by_kind = " ".join(f"{kind[:5]}={row.get(f'r@5 {kind}', float('nan')):.3f}" for kind in KINDS)
        print(
            f"{c['SEARCH_RRF_K']:>6} {c['SEARCH_VECTOR_WEIGHT']:>6} {c['SEARCH_KEYWORD_WEIGHT']:>6}"
            f" {c['SEARCH_CANDIDATES']:>5} | {row['r@1']:6.3f} {row['r@5']:6.3f} {row['r@10']:6.3f} {row['mrr']:6.3f}"
            f" | {by_kind}"
        )
    return rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=here / "golden" / "corpus")
    parser.add_argument("--questions", type=Path, default=here / "golden" / "questions.jsonl")
    parser.add_argument("--k", type=int, default=10, help="results per search (recall@10 needs k >= 10)")
    parser.add_argument("--reuse", action="store_true", help="keep corpus documents that are already ready")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated subset of " + ",".join(MODES))
    parser.add_argument("--json", action="store_true", help="print the metrics as one JSON object at the end")
    parser.add_argument("--sweep", action="store_true", help="also evaluate hybrid over a grid of fusion settings")
    parser.add_argument("--no-misses", action="store_true", help="do not list the misses of hybrid@5")
    parser.add_argument(
        "--no-feedback-cases", action="store_true", help="do not judge the test cases made from rated answers"
    )
    parser.add_argument(
        "--feedback-cases-only", action="store_true", help="judge only the rated-answer cases (no golden set)"
    )
    parser.add_argument(
        "--lenient-snippets", action="store_true", help="judge questions whose snippet no chunk holds by document"
    )
    args = parser.parse_args(argv)
    args.modes = tuple(m for m in args.modes.split(",") if m)
    if not args.modes or any(m not in MODES for m in args.modes):
        parser.error(f"--modes must be a subset of {','.join(MODES)}")
    if args.k < 1:
        parser.error("--k must be at least 1")
    return args


def feedback_case_table(*, user, k: int, modes: tuple[str, ...]) -> dict[str, dict] | None:
    """Judge the rated-answer cases in every mode and print their table; ``None`` when there are none."""
    cases = retrieval_cases()
    if not cases:
        print("\nrated-answer cases: none in this database (admin: Answer feedback → Make retrieval test cases)")
        return None

    def search(*, query: str, mode: str, k: int):
        try:
            return search_chunks(query=query, user=user, k=k, mode=mode)
        except SearchError:
            return []

    results = evaluate_cases(cases, search=search, modes=modes, k=k)
    table = {mode: {"feedback": case_metrics(results, mode, k)} for mode in modes}
    for lang in LANGS:
        chosen = [result for result in results if result.language == lang]
        if chosen:
            for mode in modes:
                table[mode][f"feedback/lang={lang}"] = case_metrics(chosen, mode, k)
    print(f"\nrated-answer cases ({len(cases)}), searched over every ready document:\n")
    print_table(table, modes)
    return table


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.feedback_cases_only:
        table = feedback_case_table(user=bench_user(), k=args.k, modes=args.modes)
        if args.json:
            print(json.dumps({"k": args.k, "feedback_cases": table}, ensure_ascii=False))
        return 0
    corpus = load_corpus(args.corpus)
    questions = load_questions(args.questions, corpus)
    print(
        f"golden set: {len(corpus)} documents, {len(questions)} questions "
        f"({', '.join(f'{kind} {sum(q.kind == kind for q in questions)}' for kind in KINDS)}; "
        f"{', '.join(f'{lang} {sum(q.lang == lang for q in questions)}' for lang in LANGS)})"
    )
    unused = sorted(set(corpus) - {q.document for q in questions})
    if unused:
        print(f"note: no question targets {', '.join(unused)}")
    user = bench_user()
    documents = ingest(corpus, user=user, reuse=args.reuse)
    check_snippets_in_chunks(questions, documents, lenient=args.lenient_snippets)
    ids = {name: document.pk for name, document in documents.items()}
    document_ids = sorted(ids.values())
    k = args.k
    config = current_config()
    chunks = Chunk.objects.filter(document_id__in=document_ids).count()
    print(
        f"searching as {BENCH_USER!r} over {len(document_ids)} documents / {chunks} chunks, k={k}, "
        + ", ".join(f"{key}={value}" for key, value in config.items())
    )
    memoize_query_embeddings()
    latencies = {}
    for mode in args.modes:
        latencies[mode] = run_mode(questions, mode=mode, user=user, k=k, document_ids=document_ids, ids=ids)
    table = all_metrics(questions, args.modes, k)
    print()
    print_table(table, args.modes)
    print(
        "\nmedian latency per query (ms, query embeddings cached after the first mode): "
        + ", ".join(f"{mode} {statistics.median(values):.1f}" for mode, values in latencies.items())
    )
    misses: list[str] = []
    if "hybrid" in args.modes and not args.no_misses:
        misses = print_misses(questions, mode="hybrid", cutoff=5, modes=args.modes)
    sweep_rows = sweep(questions, user=user, k=k, document_ids=document_ids, ids=ids) if args.sweep else None
    feedback_table = None if args.no_feedback_cases else feedback_case_table(user=user, k=k, modes=args.modes)
    if args.json:
        result = {
            "config": config,
            "k": k,
            "documents": len(document_ids),
            "chunks": chunks,
            "questions": len(questions),
            "metrics": table,
            "hybrid_misses_at_5": misses,
        }
        if sweep_rows is not None:
            result["sweep"] = sweep_rows
        if feedback_table is not None:
            result["feedback_cases"] = feedback_table
        print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
