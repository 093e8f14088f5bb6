"""A real daphne serving the ASGI app on the test database, for tests that talk to the live server over HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.conftest import ROOT, wait_until, worker_database_url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Daphne:
    """The ASGI app served by a real daphne process on the test database, restartable on the same port."""

    def __init__(self, log_path: Path) -> None:
        self.port = free_port()
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Daphne:
        env = {**os.environ, "DATABASE_URL": worker_database_url(), "ALLOWED_HOSTS": "127.0.0.1,localhost"}
        daphne = Path(sys.executable).with_name("daphne")
        command = [str(daphne), "-b", "127.0.0.1", "-p", str(self.port), "protostar.asgi:application"]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            # Generous: on a loaded machine daphne's start-up (Django, the warm-up) alone can take half a minute.
            wait_until(self._serving, timeout=120, message="daphne to serve the login page")
        except BaseException:
            self.stop()
            raise
        return self

    def _serving(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"daphne exited: {self.log_path.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{self.url}/accounts/login/", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def api_key(user, *scopes: str, expires_in_days: int | None = None) -> str:
    """A new API key of ``user`` with ``scopes`` (all three when none are named)."""
    from accounts.services import apikey_create

    _key, secret = apikey_create(
        user=user, name="tests", scopes=list(scopes or ("read", "ask", "manage")), expires_in_days=expires_in_days
    )
    return secret


def api_client(server: Daphne, key: str | None = None, **kwargs):
    """An ``httpx`` client for the live server, sending ``key`` as a bearer token."""
    import httpx

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=server.url, headers=headers, timeout=kwargs.pop("timeout", 30), **kwargs)
