#!/usr/bin/env bash
# The browser tests drive Debian's Chromium headless; install it when missing (needs root, as in CI).
set -uo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "chromium/chromedriver missing and not root: browser tests will be skipped" >&2
  exit 0
fi
echo "installing chromium and chromium-driver for the browser tests" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null && apt-get install -y -qq chromium chromium-driver >/dev/null \
  || echo "could not install chromium: browser tests will be skipped" >&2
exit 0
