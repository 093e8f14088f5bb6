"""Pytest plugin loaded with ``-p tests.bootstrap``: starts the real servers before Django settings load.

Tests use their own data directory (``.data/test``), so their servers, ports and data never touch development's.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("PROTOSTAR_DATA_DIR", str(ROOT / ".data" / "test"))

from protostar.prometheus import clear  # noqa: E402
from protostar.services.launcher import Launcher  # noqa: E402

Launcher(Path(os.environ["PROTOSTAR_DATA_DIR"])).up()
# Metrics files of an earlier session's processes would be merged into this one's scrapes.
_metrics = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or Path(os.environ["PROTOSTAR_DATA_DIR"]) / "metrics")
if _metrics.is_dir():
    clear(str(_metrics))
