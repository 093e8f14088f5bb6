"""OCR accuracy and speed on scanned pages whose text is known, Korean and English.

    .venv/bin/python bench/ocr.py [--pages 4 --dpi 300 --scan-dpi 200] [--json]

Each page's known text is drawn onto an image-only PDF (a 200 dpi "scan"), rendered back at ``--dpi`` and read by
the configured engine (Tesseract, kor+eng). Character accuracy = 1 − (edit distance ÷ length), whitespace ignored
(Korean spacing is not what search depends on). The baseline in the same run is pypdf reading the same pages from a
text-layer PDF: the ratio says how much slower a scanned page is than a born-digital one.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import sys
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.ingest import sentence


def known_pages(count: int, korean: bool) -> list[str]:
    rng = random.Random(17 if korean else 23)
    pages = []
    for _ in range(count):
        body = " ".join(sentence(rng, korean) for _ in range(8))
        # Short enough lines to stay on the page at the factory's 14 pt.
        pages.append("\n".join(textwrap.wrap(body, width=30 if korean else 60)))
    return pages


def char_accuracy(expected: str, got: str) -> float:
    a, b = "".join(expected.split()), "".join(got.split())
    if not a:
        return 1.0 if not b else 0.0
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        current = [i] + [0] * len(b)
        for j, char_b in enumerate(b, start=1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b))
        previous = current
    return max(0.0, 1 - previous[-1] / len(a))


def run_ocr(pages: list[str], *, scan_dpi: int, dpi: int) -> dict:
    from django.conf import settings

    from knowledge.ocr import get_ocr_engine
    from knowledge.ocr.render import open_pdf, render_page_png
    from tests.knowledge.pdf_factory import make_scanned_pdf

    pdf = open_pdf(make_scanned_pdf(pages, dpi=scan_dpi))
    engine = get_ocr_engine()
    accuracies, confidences = [], []
    started = time.perf_counter()
    for number, expected in enumerate(pages, start=1):
        image = render_page_png(pdf, number, dpi=dpi, max_pixels=settings.OCR_MAX_PIXELS)
        result = engine.read(image, languages=settings.OCR_LANGUAGES, timeout=settings.OCR_PAGE_TIMEOUT)
        accuracies.append(char_accuracy(expected, result.text))
        confidences.append(result.confidence or 0.0)
    seconds = (time.perf_counter() - started) / len(pages)
    return {
        "char_accuracy": round(sum(accuracies) / len(accuracies), 4),
        "worst_page_accuracy": round(min(accuracies), 4),
        "engine_confidence": round(sum(confidences) / len(confidences), 1),
        "seconds_per_page": round(seconds, 3),
    }


def run_text_layer(pages: list[str]) -> float:
    from pypdf import PdfReader

    from tests.knowledge.pdf_factory import make_pdf

    reader = PdfReader(io.BytesIO(make_pdf(pages)))
    started = time.perf_counter()
    for page in reader.pages:
        page.extract_text()
    return (time.perf_counter() - started) / len(pages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pages", type=int, default=4, help="pages per language")
    parser.add_argument("--dpi", type=int, default=None, help="render resolution for OCR (default: OCR_DPI)")
    parser.add_argument("--scan-dpi", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "protostar.settings")
    from bench.stack import prepare

    prepare()
    from django.conf import settings

    dpi = args.dpi or settings.OCR_DPI
    results = {}
    for language, korean in (("ko", True), ("en", False)):
        pages = known_pages(args.pages, korean)
        results[language] = run_ocr(pages, scan_dpi=args.scan_dpi, dpi=dpi)
        results[language]["text_layer_seconds_per_page"] = round(run_text_layer(pages), 5)
    if args.json:
        print(json.dumps({"dpi": dpi, "scan_dpi": args.scan_dpi, "pages": args.pages, "results": results}))
        return
    print(
        f"OCR engine {settings.OCR_ENGINE.rsplit('.', 1)[-1]} ({settings.OCR_LANGUAGES}), render {dpi} dpi, "
        f"scans at {args.scan_dpi} dpi, {args.pages} pages per language"
    )
    print(f"{'lang':5} {'char acc':>9} {'worst':>7} {'conf':>6} {'s/page':>8} {'text-layer s/page':>18} {'ratio':>8}")
    for language, r in results.items():
        ratio = r["seconds_per_page"] / max(r["text_layer_seconds_per_page"], 1e-6)
        print(
            f"{language:5} {r['char_accuracy']:9.3f} {r['worst_page_accuracy']:7.3f} {r['engine_confidence']:6.1f} "
            f"{r['seconds_per_page']:8.2f} {r['text_layer_seconds_per_page']:18.4f} {ratio:7.0f}×"
        )


if __name__ == "__main__":
    main()
