"""Judge retrieval on the test cases made from rated answers (``bench/retrieval_eval.py`` runs this beside the
shipped golden set).

A case is found at the first rank whose hit comes from the case's document and holds its snippet (whitespace
folded): chunk ids change when a document is ingested again, the text does not.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from feedback.models import RetrievalCase

CUTOFFS = (1, 5, 10)


@dataclass
class CaseResult:
    case_id: int
    question: str
    language: str
    ranks: dict[str, int | None] = field(default_factory=dict)


def _folded(text: str) -> str:
    return " ".join(text.split())


def case_rank(case: RetrievalCase, hits: Sequence[Any]) -> int | None:
    snippet = _folded(case.snippet)
    return next(
        (
            rank
            for rank, hit in enumerate(hits, 1)
            if hit.document_id == case.document_id and snippet in _folded(hit.text)
        ),
        None,
    )


def evaluate_cases(
    cases: Sequence[RetrievalCase], *, search: Callable[..., Sequence[Any]], modes: Sequence[str], k: int
) -> list[CaseResult]:
    """Search every case's question in every mode with ``search(query=..., mode=..., k=...)``."""
    results = []
    for case in cases:
        result = CaseResult(case_id=case.pk, question=case.question, language=case.language)
        for mode in modes:
            result.ranks[mode] = case_rank(case, search(query=case.question, mode=mode, k=k))
        results.append(result)
    return results


def case_metrics(results: Sequence[CaseResult], mode: str, k: int) -> dict[str, float | int]:
    ranks = [result.ranks.get(mode) for result in results]
    out: dict[str, float | int] = {"n": len(ranks)}
    if not ranks:
        return out
    for cutoff in CUTOFFS:
        if cutoff <= k:
            out[f"r@{cutoff}"] = sum(1 for rank in ranks if rank is not None and rank <= cutoff) / len(ranks)
    out["mrr"] = sum(1 / rank for rank in ranks if rank is not None) / len(ranks)
    return out
