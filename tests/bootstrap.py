"""Pytest plugin loaded with ``-p tests.bootstrap``: starts the real servers before Django settings load.

Tests use their own data directory (``.data/test``), so their servers, ports and data never touch development's.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("PROTOSTAR_DATA_DIR", str(ROOT / ".data" / "test"))

from protostar.services.launcher import Launcher  # noqa: E402

Launcher(Path(os.environ["PROTOSTAR_DATA_DIR"])).up()
