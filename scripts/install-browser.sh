#!/usr/bin/env bash
# The browser tests drive Debian's Chromium headless; install it when missing (needs root, as in CI).
# fonts-noto-cjk gives Chromium a Korean font, so screenshots of Korean answers show text rather than boxes.
set -uo pipefail
has_korean_font() { command -v fc-list >/dev/null && [ -n "$(fc-list :lang=ko family 2>/dev/null | head -n 1)" ]; }
if command -v chromium >/dev/null && command -v chromedriver >/dev/null && has_korean_font; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "chromium/chromedriver (or a Korean font) missing and not root: browser tests may be skipped" >&2
  exit 0
fi
echo "installing chromium, chromium-driver and fonts-noto-cjk for the browser tests" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null && apt-get install -y -qq chromium chromium-driver fonts-noto-cjk >/dev/null \
  || echo "could not install chromium: browser tests will be skipped" >&2
exit 0
