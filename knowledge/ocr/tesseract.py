"""Tesseract (Debian's ``tesseract-ocr`` with its ``kor`` and ``eng`` data), run as a bounded subprocess.

Chosen because it runs offline from the distribution's packages: the pip engines that read Korean (rapidocr,
paddleocr, easyocr) download their models from a hub at run time, which this deployment cannot reach.
One thread per page (``OMP_THREAD_LIMIT=1``) so a page never takes both cores from the embedder; the wall-clock
timeout and a CPU-time rlimit both bound a page.
"""

from __future__ import annotations

import csv
import io
import os
import resource
import shutil
import subprocess
import tempfile
from pathlib import Path

from knowledge.ocr import OcrFailed, OcrResult

# TSV level 5 rows are words (their confidences are averaged); the text itself comes from the txt renderer, which
# joins Korean syllables the TSV lists as separate words.
_WORD_LEVEL = "5"
# "A single column of text of variable sizes": the automatic layout analysis (3) dropped whole lines of short
# Korean pages here, while 4 read them and matched it on full pages.
PAGE_SEGMENTATION = "4"


class TesseractEngine:
    name = "tesseract"

    def __init__(self, binary: str = "tesseract") -> None:
        self.binary = shutil.which(binary) or binary

    def read(self, image_png: bytes, *, languages: str, timeout: float) -> OcrResult:
        with tempfile.TemporaryDirectory(prefix="ocr-") as folder:
            base = Path(folder) / "page"
            command = [self.binary, "stdin", str(base), "-l", languages, "--psm", PAGE_SEGMENTATION, "txt", "tsv"]
            self._run(command, image_png, timeout)
            text = base.with_suffix(".txt").read_text(encoding="utf-8", errors="replace")
            confidence = mean_word_confidence(base.with_suffix(".tsv").read_text(encoding="utf-8", errors="replace"))
        return OcrResult(text=text.strip(), confidence=confidence)

    def _run(self, command: list[str], image_png: bytes, timeout: float) -> None:
        env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
        try:
            completed = subprocess.run(
                command,
                input=image_png,
                capture_output=True,
                timeout=timeout,
                env=env,
                preexec_fn=_limit_cpu(timeout),
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise OcrFailed(f"OCR stopped after {timeout:g} s (the per-page limit).") from exc
        except OSError as exc:
            raise OcrFailed("The OCR engine (tesseract) is not installed on the server.") from exc
        if completed.returncode != 0:
            detail = completed.stderr.decode("utf-8", "replace").strip().splitlines()
            raise OcrFailed(f"The OCR engine failed: {detail[-1][:200] if detail else completed.returncode}")


def _limit_cpu(seconds: float):
    limit = max(1, int(seconds) + 1)

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_CPU, (limit, limit + 1))

    return apply


def mean_word_confidence(tsv: str) -> float | None:
    """Mean confidence (0–100) of the recognised words; None when there are none."""
    confidences: list[float] = []
    for row in csv.DictReader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE):
        if row.get("level") != _WORD_LEVEL or not (row.get("text") or "").strip():
            continue
        try:
            confidence = float(row["conf"])
        except (TypeError, ValueError):
            continue
        if confidence >= 0:
            confidences.append(confidence)
    return round(sum(confidences) / len(confidences), 1) if confidences else None
