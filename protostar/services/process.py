"""Small process and port helpers shared by the service definitions."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import time
from pathlib import Path

LOOPBACK = "127.0.0.1"


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def find_free_ports(count: int = 1, *, stride_offsets: tuple[int, ...] = (0,)) -> list[int]:
    """Pick ``count`` consecutive free ports; every ``port + offset`` must be free too.

    SeaweedFS also binds ``port + 10000`` for gRPC, hence the offsets.
    """
    rng = random.Random()
    for _ in range(500):
        base = rng.randrange(20000, 30000)
        ports = [base + i for i in range(count)]
        if all(port_is_free(p + off) for p in ports for off in stride_offsets):
            return ports
    raise RuntimeError("could not find free loopback ports")


def wait_for_port(port: int, *, timeout: float, host: str = LOOPBACK) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return True
        time.sleep(0.05)
    return False


def read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); treat it as gone.
    with contextlib.suppress(OSError):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state == "Z":
            return False
    return True


def terminate(pid: int | None, *, timeout: float = 10.0) -> None:
    if not pid_alive(pid):
        return
    assert pid is not None
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
