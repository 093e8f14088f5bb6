#!/usr/bin/env bash
# Make sure uv exists (installing it with pip when missing) and the project's environment matches uv.lock.
set -euo pipefail
cd "$(dirname "$0")/.."

find_uv() {
  command -v uv 2>/dev/null && return 0
  [ -x .tools/bin/uv ] && { echo .tools/bin/uv; return 0; }
  [ -x "$HOME/.local/bin/uv" ] && { echo "$HOME/.local/bin/uv"; return 0; }
  return 1
}

if ! UV=$(find_uv); then
  echo "uv not found: installing it with pip into .tools/" >&2
  if python3 -m venv .tools >/dev/null 2>&1 && .tools/bin/python -m pip --version >/dev/null 2>&1; then
    .tools/bin/python -m pip install --quiet uv
  else
    rm -rf .tools
    python3 -m pip install --quiet --user uv 2>/dev/null \
      || python3 -m pip install --quiet --user --break-system-packages uv
  fi
  UV=$(find_uv) || { echo "could not install uv with pip" >&2; exit 1; }
fi
# Never let uv fetch a Python build: the machine's own 3.11 is the one we use.
UV_PYTHON_DOWNLOADS=never "$UV" sync --frozen --python 3.11 --quiet
