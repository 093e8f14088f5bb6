"""The golden set's files and questions, read and checked (``bench/golden``): what ``retrieval_eval.py`` judges."""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_SNIPPET_CHARS = 60
PAGE_BREAK = "<<<PAGE>>>"
KINDS = ("direct", "paraphrase", "cross-lingual", "keyword")
LANGS = ("ko", "en")


class GoldenSetError(SystemExit):
    """The golden set itself is wrong: stop before measuring anything."""

    def __init__(self, problems: list[str]) -> None:
        lines = "\n".join(f"  - {p}" for p in problems[:60])
        more = f"\n  … and {len(problems) - 60} more" if len(problems) > 60 else ""
        super().__init__(f"GOLDEN SET INVALID ({len(problems)} problem(s)):\n{lines}{more}")


# --- corpus and questions ---------------------------------------------------------------------------------------


@dataclass
class CorpusFile:
    name: str  # the file name documents are uploaded as; questions refer to it
    data: bytes
    text: str  # the source text, for checking snippets


@dataclass
class Question:
    id: str
    question: str
    lang: str
    kind: str
    document: str
    snippet: str = ""
    ranks: dict[str, int | None] = field(default_factory=dict)  # mode -> rank of the first correct hit
    # mode -> the first hit (a knowledge.search.SearchHit), or None
    top: dict[str, Any] = field(default_factory=dict)


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def load_corpus(corpus_dir: Path) -> dict[str, CorpusFile]:
    if not corpus_dir.is_dir():
        raise GoldenSetError([f"corpus folder {corpus_dir} does not exist"])
    files: dict[str, CorpusFile] = {}
    for path in sorted(p for p in corpus_dir.iterdir() if p.is_file() and not p.name.startswith(".")):
        data = path.read_bytes()
        files[path.name] = CorpusFile(path.name, data, nfc(data.decode("utf-8")))
    pdf_dir = corpus_dir / "pdf-source"
    if pdf_dir.is_dir():
        from tests.knowledge.pdf_factory import make_pdf

        for path in sorted(pdf_dir.glob("*.txt")):
            source = nfc(path.read_text(encoding="utf-8"))
            pages = [page.strip("\n") for page in source.split(PAGE_BREAK)]
            name = f"{path.stem}.pdf"
            files[name] = CorpusFile(name, make_pdf(pages), "\n".join(pages))
    if not files:
        raise GoldenSetError([f"corpus folder {corpus_dir} holds no documents"])
    return files


def load_questions(path: Path, corpus: dict[str, CorpusFile]) -> list[Question]:
    problems: list[str] = []
    questions: list[Question] = []
    seen: set[str] = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path.name}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{where}: not JSON ({exc})")
            continue
        missing = [key for key in ("id", "question", "lang", "kind", "document") if not row.get(key)]
        if missing:
            problems.append(f"{where}: missing {', '.join(missing)}")
            continue
        question = Question(
            id=str(row["id"]),
            question=nfc(row["question"]),
            lang=row["lang"],
            kind=row["kind"],
            document=row["document"],
            snippet=nfc(row.get("snippet") or ""),
        )
        where = f"{where} ({question.id})"
        if question.id in seen:
            problems.append(f"{where}: duplicate id")
        seen.add(question.id)
        if question.lang not in LANGS:
            problems.append(f"{where}: lang {question.lang!r} is not one of {LANGS}")
        if question.kind not in KINDS:
            problems.append(f"{where}: kind {question.kind!r} is not one of {KINDS}")
        doc = corpus.get(question.document)
        if doc is None:
            problems.append(f"{where}: document {question.document!r} is not in the corpus")
        elif question.snippet:
            if len(question.snippet) > MAX_SNIPPET_CHARS:
                problems.append(f"{where}: snippet is {len(question.snippet)} chars (max {MAX_SNIPPET_CHARS})")
            if question.snippet not in doc.text:
                problems.append(f"{where}: snippet {question.snippet!r} is not a substring of {question.document}")
        questions.append(question)
    if problems:
        raise GoldenSetError(problems)
    if not questions:
        raise GoldenSetError([f"{path} holds no questions"])
    return questions


# --- ingestion --------------------------------------------------------------------------------------------------
