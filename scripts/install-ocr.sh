#!/usr/bin/env bash
# OCR of scanned PDF pages uses Debian's Tesseract with its Korean and English data; install it when missing
# (needs root, as in CI). Without it, scanned pages fail with a clear reason and everything else works.
set -uo pipefail
has_ocr() {
  command -v tesseract >/dev/null && tesseract --list-langs 2>/dev/null | grep -qx kor \
    && tesseract --list-langs 2>/dev/null | grep -qx eng
}
if has_ocr; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "tesseract-ocr (kor, eng) missing and not root: OCR of scanned PDFs will not work" >&2
  exit 0
fi
echo "installing tesseract-ocr with its Korean and English data" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null && apt-get install -y -qq tesseract-ocr tesseract-ocr-kor tesseract-ocr-eng >/dev/null \
  || echo "could not install tesseract-ocr: OCR of scanned PDFs will not work" >&2
exit 0
