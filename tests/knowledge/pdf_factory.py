"""Build real PDF files in memory for tests and benchmarks, with no fixture files on disk.

``make_pdf(["page one", "두 번째 페이지"])`` writes one page per string. ASCII runs use the standard Type1 font
Helvetica; every other character goes through a Type0 font (``/Identity-H``) whose ``/ToUnicode`` CMap maps each
code to its character, so text extractors recover Korean exactly without any glyphs being embedded.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterable

FONT_SIZE = 11
LINE_HEIGHT = 15
PAGE_WIDTH, PAGE_HEIGHT = 595, 842  # A4 in points
TOP_MARGIN, LEFT_MARGIN = 800, 56


def make_pdf(pages: list[str]) -> bytes:
    """A valid PDF with one page per string; lines are split on ``\\n``; Korean and English may share a line."""
    codes = _code_table(pages)
    contents = [_text_content(page, codes) for page in pages]
    return _build_pdf(contents, codes=codes)


def make_encrypted_pdf(pages: list[str], *, password: str = "secret") -> bytes:
    """The same document, encrypted with a user password (it cannot be opened without it)."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf(pages))))
    writer.encrypt(user_password=password, owner_password=password + "-owner", algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def make_truncated_pdf(pages: list[str]) -> bytes:
    """A PDF cut off after its header and part of the first object, as an interrupted download would leave it."""
    data = make_pdf(pages)
    return data[: data.index(b"/Pages") + 3]


def make_image_only_pdf(page_count: int = 1) -> bytes:
    """Pages that only paint an image and a rectangle, like a scan: there is no text to extract."""
    content = b"q 0.2 0.2 0.2 rg 56 56 483 730 re f Q\nq 400 0 0 500 96 200 cm /Im1 Do Q\n"
    return _build_pdf([content] * page_count, with_image=True)


def make_decompression_bomb_pdf(inflated_bytes: int = 120 * 1024 * 1024) -> bytes:
    """One page whose Flate content stream is ~0.1% of ``inflated_bytes`` on disk and inflates to that many spaces."""
    compressor = zlib.compressobj(9)
    block = b" " * (1024 * 1024)
    parts = [compressor.compress(block) for _ in range(inflated_bytes // len(block))]
    parts.append(compressor.compress(b"BT /F1 11 Tf 56 800 Td (boom) Tj ET\n"))
    parts.append(compressor.flush())
    return _build_pdf([b"".join(parts)], flate=True)


def make_elf_bytes() -> bytes:
    """The start of a 64-bit Linux executable, long enough for signature sniffing."""
    header = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + struct.pack("<HHI", 2, 0x3E, 1)
    return header + b"\x00" * (256 - len(header))


def make_png_bytes() -> bytes:
    """A valid 1x1 grey PNG image."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\x00\x80")  # filter byte 0, one grey pixel
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def make_empty_bytes() -> bytes:
    return b""


# --- internals -----------------------------------------------------------------------------------------------


def _code_table(pages: Iterable[str]) -> dict[str, int]:
    """Two-byte codes (CIDs) for every non-ASCII character, in first-seen order so output is deterministic."""
    codes: dict[str, int] = {}
    for page in pages:
        for char in page:
            if char != "\n" and not _is_ascii(char) and char not in codes:
                codes[char] = len(codes) + 1
    if len(codes) > 0xFFFE:
        raise ValueError("too many distinct non-ASCII characters for one two-byte font")
    return codes


def _is_ascii(char: str) -> bool:
    return 32 <= ord(char) < 127


def _runs(line: str) -> list[tuple[bool, str]]:
    """Split a line into (is_ascii, text) runs."""
    runs: list[tuple[bool, str]] = []
    for char in line:
        ascii_char = _is_ascii(char)
        if runs and runs[-1][0] == ascii_char:
            runs[-1] = (ascii_char, runs[-1][1] + char)
        else:
            runs.append((ascii_char, char))
    return runs


def _literal(text: str) -> bytes:
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return b"(" + escaped.encode("ascii") + b")"


def _text_content(page: str, codes: dict[str, int]) -> bytes:
    ops: list[bytes] = []
    for index, line in enumerate(page.split("\n")):
        if not line:
            continue
        y = TOP_MARGIN - index * LINE_HEIGHT
        ops.append(f"BT {LEFT_MARGIN} {y} Td".encode())
        for ascii_run, text in _runs(line):
            if ascii_run:
                ops.append(f"/F1 {FONT_SIZE} Tf ".encode() + _literal(text) + b" Tj")
            else:
                hexcodes = "".join(f"{codes[char]:04X}" for char in text)
                ops.append(f"/F2 {FONT_SIZE} Tf <{hexcodes}> Tj".encode())
        ops.append(b"ET")
    return b"\n".join(ops) + b"\n"


def _to_unicode_cmap(codes: dict[str, int]) -> bytes:
    lines = [
        "/CIDInit /ProcSet findresource begin",
        "12 dict begin",
        "begincmap",
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def",
        "/CMapName /Adobe-Identity-UCS def",
        "/CMapType 2 def",
        "1 begincodespacerange",
        "<0000> <FFFF>",
        "endcodespacerange",
    ]
    items = sorted(codes.items(), key=lambda item: item[1])
    for offset in range(0, len(items), 100):  # the CMap syntax allows at most 100 entries per block
        block = items[offset : offset + 100]
        lines.append(f"{len(block)} beginbfchar")
        lines.extend(f"<{code:04X}> <{char.encode('utf-16-be').hex().upper()}>" for char, code in block)
        lines.append("endbfchar")
    lines += ["endcmap", "CMapName currentdict /CMap defineresource pop", "end", "end"]
    return "\n".join(lines).encode("ascii")


class _Objects:
    """Numbered PDF objects, serialised with a correct cross-reference table."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    def reserve(self) -> int:
        self.bodies.append(b"")
        return len(self.bodies)

    def set(self, number: int, body: bytes) -> None:
        self.bodies[number - 1] = body

    def add(self, body: bytes) -> int:
        number = self.reserve()
        self.set(number, body)
        return number

    def stream(self, data: bytes, extra: bytes = b"") -> int:
        return self.add(b"<< /Length %d %s>>\nstream\n" % (len(data), extra) + data + b"\nendstream")

    def serialise(self, root: int) -> bytes:
        out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
        offsets = []
        for number, body in enumerate(self.bodies, start=1):
            offsets.append(len(out))
            out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
        xref = len(out)
        out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(self.bodies) + 1)
        out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
        out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(self.bodies) + 1, root, xref)
        return bytes(out)


def _fonts(objects: _Objects, codes: dict[str, int]) -> bytes:
    helvetica = objects.add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    descriptor = objects.add(
        b"<< /Type /FontDescriptor /FontName /NotoSansKR /Flags 4 /FontBBox [0 -120 1000 880] /ItalicAngle 0 "
        b"/Ascent 880 /Descent -120 /CapHeight 700 /StemV 80 >>"
    )
    cid_font = objects.add(
        b"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /NotoSansKR "
        b"/CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> "
        b"/FontDescriptor %d 0 R /DW 1000 /CIDToGIDMap /Identity >>" % descriptor
    )
    to_unicode = objects.stream(_to_unicode_cmap(codes))
    type0 = objects.add(
        b"<< /Type /Font /Subtype /Type0 /BaseFont /NotoSansKR /Encoding /Identity-H "
        b"/DescendantFonts [%d 0 R] /ToUnicode %d 0 R >>" % (cid_font, to_unicode)
    )
    return b"/Font << /F1 %d 0 R /F2 %d 0 R >>" % (helvetica, type0)


def _build_pdf(
    contents: list[bytes], *, codes: dict[str, int] | None = None, with_image: bool = False, flate: bool = False
) -> bytes:
    objects = _Objects()
    catalog, pages_tree = objects.reserve(), objects.reserve()
    resources = _fonts(objects, codes or {})
    if with_image:
        image = objects.stream(
            b"\x80", b"/Type /XObject /Subtype /Image /Width 1 /Height 1 /ColorSpace /DeviceGray /BitsPerComponent 8 "
        )
        resources += b" /XObject << /Im1 %d 0 R >>" % image
    kids = []
    for content in contents:
        stream = objects.stream(content, b"/Filter /FlateDecode " if flate else b"")
        kids.append(
            objects.add(
                b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 %d %d] /Resources << %s >> /Contents %d 0 R >>"
                % (pages_tree, PAGE_WIDTH, PAGE_HEIGHT, resources, stream)
            )
        )
    refs = b" ".join(b"%d 0 R" % kid for kid in kids)
    objects.set(pages_tree, b"<< /Type /Pages /Kids [%s] /Count %d >>" % (refs, len(kids)))
    objects.set(catalog, b"<< /Type /Catalog /Pages %d 0 R >>" % pages_tree)
    return objects.serialise(catalog)


def korean_font_path() -> str | None:
    """A font with Hangul (fonts-noto-cjk, installed by scripts/install-browser.sh), or None when there is none."""
    import shutil
    import subprocess

    if not shutil.which("fc-match"):
        return None
    found = subprocess.run(
        ["fc-match", "-f", "%{file}", ":lang=ko"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return found if found.endswith((".ttc", ".otf", ".ttf")) else None


def make_scanned_pdf(pages: list[str], *, dpi: int = 200, font_path: str | None = None) -> bytes:
    """Image-only pages, like a scanner's output: each string is drawn as black text on a white A4 bitmap.

    There is no text layer at all (Pillow writes one JPEG per page), so only OCR can read the words.
    """
    from PIL import Image, ImageDraw, ImageFont

    font_path = font_path or korean_font_path()
    if font_path is None:
        raise RuntimeError("no Korean font installed (fonts-noto-cjk)")
    scale = dpi / 72
    font = ImageFont.truetype(font_path, size=round(14 * scale))
    images = []
    for page in pages:
        image = Image.new("L", (round(PAGE_WIDTH * scale), round(PAGE_HEIGHT * scale)), color=255)
        draw = ImageDraw.Draw(image)
        y = 60 * scale
        for line in page.split("\n"):
            draw.text((LEFT_MARGIN * scale, y), line, font=font, fill=0)
            y += 24 * scale
        images.append(image)
    out = io.BytesIO()
    images[0].save(out, format="PDF", resolution=dpi, save_all=True, append_images=images[1:])
    return out.getvalue()
