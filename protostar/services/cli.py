"""``manage.py services up|down|status`` without needing Django settings (they read what ``up`` writes)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from protostar.services.launcher import Launcher

PROJECT_DIR = Path(__file__).resolve().parents[2]


def default_data_dir() -> Path:
    return Path(os.environ.get("PROTOSTAR_DATA_DIR") or PROJECT_DIR / ".data" / "dev")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="manage.py services", description=__doc__)
    parser.add_argument("action", choices=["up", "down", "status", "env"])
    parser.add_argument("names", nargs="*", help="postgres, redis, s3 (default: all)")
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    launcher = Launcher(args.data_dir or default_data_dir())

    if args.action == "up":
        started = time.monotonic()
        launcher.up(args.names or None)
        for status in launcher.status():
            print(f"{status.name:9} {status.state:9} {status.detail}")
        print(f"services ready in {time.monotonic() - started:.1f}s; settings in {launcher.env_file}")
    elif args.action == "down":
        launcher.down(args.names or None)
        print("services stopped")
    elif args.action == "env":
        print(launcher.env_file.read_text() if launcher.env_file.exists() else "", end="")
    else:
        statuses = launcher.status()
        for status in statuses:
            pid = f"pid {status.pid}" if status.pid else ""
            print(f"{status.name:9} {status.state:9} {pid:11} {status.detail}")
        return 0 if all(s.state != "stopped" for s in statuses) else 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
