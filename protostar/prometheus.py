"""Multiprocess mode for prometheus_client, set up by the settings module before any metric exists.

Every process (daphne, each worker) writes its figures to memory-mapped files in ``PROMETHEUS_MULTIPROC_DIR`` and
``/metrics`` merges them. Files are named after a process identifier; ours is ``<hostname>-<pid>`` rather than the
pid alone, so containers sharing one volume (where every first process is pid 1) never write into each other's file.
"""

from __future__ import annotations

import glob
import os
import socket
from pathlib import Path

from prometheus_client import values
from prometheus_client.multiprocess import mark_process_dead

from protostar.services.process import pid_alive

HOST = socket.gethostname().replace("_", "-")


def process_identifier() -> str:
    return f"{HOST}-{os.getpid()}"


def configure(directory: str) -> None:
    """Turn multiprocess mode on (``directory`` non-empty); prometheus_client reads the variable in each process."""
    if not directory:
        return
    Path(directory).mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    values.ValueClass = values.MultiProcessValue(process_identifier=process_identifier)


def forget_dead_processes(directory: str) -> None:
    """Drop the live-gauge files of this host's processes that are gone (a killed worker never says goodbye), so
    gauges such as answers in flight count only processes that are alive. Other hosts' files are left alone."""
    prefix = f"{HOST}-"
    for path in glob.glob(os.path.join(directory, "gauge_live*_*.db")):
        identifier = Path(path).stem.split("_", 2)[-1]
        if not identifier.startswith(prefix):
            continue
        pid = identifier.removeprefix(prefix)
        if pid.isdigit() and not pid_alive(int(pid)):
            mark_process_dead(identifier, directory)


def clear(directory: str) -> None:
    """Remove every file of an earlier run (call before any process of a new run starts)."""
    for path in glob.glob(os.path.join(directory, "*.db")):
        os.remove(path)
