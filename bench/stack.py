"""Bring up the real stack for a benchmark: embedded servers (own data dir), Django, migrations, workers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def prepare(data_dir_name: str = "bench") -> Path:
    """Start the servers under ``.data/<name>`` (unless PROTOSTAR_DATA_DIR says otherwise), set up Django, migrate."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.environ.setdefault("PROTOSTAR_DATA_DIR", str(ROOT / ".data" / data_dir_name))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "protostar.settings")
    from protostar.services.launcher import Launcher

    Launcher(Path(os.environ["PROTOSTAR_DATA_DIR"])).up()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    from protostar.storage import bucket_ensure

    bucket_ensure()
    return ROOT


def start_worker(queues: list[str], *, worker_class: str | None = None, **extra_env: str) -> subprocess.Popen:
    """A real ``manage.py rqworker`` process; returns once it has registered with Redis."""
    import django_rq
    from rq import Worker

    args = [sys.executable, "manage.py", "rqworker", *queues]
    if worker_class:
        args += ["--worker-class", worker_class]
    process = subprocess.Popen(
        args, cwd=ROOT, env={**os.environ, **extra_env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    conn = django_rq.get_connection("default")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if any(w.pid == process.pid for w in Worker.all(connection=conn)):
            return process
        if process.poll() is not None:
            raise RuntimeError("worker exited during start-up")
        time.sleep(0.1)
    raise RuntimeError("worker did not register")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]
