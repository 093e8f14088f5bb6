"""Pytest plugin loaded with ``-p tests.bootstrap``: starts the real servers before Django settings load.

Tests use their own data directory (``.data/test``), so their servers, ports and data never touch development's.
At the end of the session the servers this session started are stopped again; set ``PROTOSTAR_KEEP_TEST_SERVERS=1``
to keep them running for fast re-runs (a later session then finds them up and leaves them so).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
KEEP_SERVERS_VARIABLE = "PROTOSTAR_KEEP_TEST_SERVERS"
os.environ.setdefault("PROTOSTAR_DATA_DIR", str(ROOT / ".data" / "test"))

from protostar.prometheus import clear  # noqa: E402
from protostar.services.launcher import Launcher  # noqa: E402

_launcher = Launcher(Path(os.environ["PROTOSTAR_DATA_DIR"]))
# Servers found running were kept by an earlier session (or belong to a session still running): not ours to stop.
_found_running = [status.name for status in _launcher.status() if status.state == "running"]
_launcher.up()
# Metrics files of an earlier session's processes would be merged into this one's scrapes.
_metrics = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or Path(os.environ["PROTOSTAR_DATA_DIR"]) / "metrics")
if _metrics.is_dir():
    clear(str(_metrics))


def keep_servers() -> bool:
    return os.environ.get(KEEP_SERVERS_VARIABLE, "").strip().lower() in {"1", "true", "yes", "on"}


def pytest_unconfigure(config: pytest.Config) -> None:
    if keep_servers():
        return
    started = [status.name for status in _launcher.status() if status.state == "running"]
    started = [name for name in started if name not in _found_running]
    if started:
        _launcher.down(started)
