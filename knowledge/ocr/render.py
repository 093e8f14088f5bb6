"""Render one PDF page to a greyscale PNG for OCR (pypdfium2: PDFium in a wheel, no system libraries)."""

from __future__ import annotations

import io

import pypdfium2 as pdfium

from knowledge.ocr import OcrFailed

POINTS_PER_INCH = 72


def render_page_png(document: pdfium.PdfDocument, number: int, *, dpi: int, max_pixels: int) -> bytes:
    """Page ``number`` (1-based) at ``dpi``, scaled down when it would exceed ``max_pixels`` (huge page sizes)."""
    try:
        page = document[number - 1]
        width, height = page.get_size()
        scale = dpi / POINTS_PER_INCH
        pixels = width * height * scale * scale
        if pixels > max_pixels:
            scale *= (max_pixels / pixels) ** 0.5
        bitmap = page.render(scale=scale, grayscale=True)
        image = bitmap.to_pil()
    except (pdfium.PdfiumError, ValueError, MemoryError) as exc:
        raise OcrFailed(f"The page could not be rendered for OCR ({type(exc).__name__}).") from exc
    out = io.BytesIO()
    # The resolution travels in the PNG, so the engine does not have to guess it from the glyph sizes.
    effective_dpi = round(scale * POINTS_PER_INCH)
    image.save(out, format="PNG", dpi=(effective_dpi, effective_dpi))
    return out.getvalue()


def open_pdf(data: bytes) -> pdfium.PdfDocument:
    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise OcrFailed("The PDF could not be opened for OCR.") from exc
