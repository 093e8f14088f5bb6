"""Start, check and stop the embedded servers under one data directory, idempotently."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from protostar.services.postgres import PostgresService
from protostar.services.process import find_free_ports, port_is_free
from protostar.services.redis import RedisService
from protostar.services.s3 import S3Service

SERVICE_CLASSES = (PostgresService, RedisService, S3Service)
ENV_FILE_NAME = "services.env"


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    state: str  # "running", "stopped" or "external"
    pid: int | None
    detail: str


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if not path.exists():
        return values
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        values[key.strip().removeprefix("export ").strip()] = value.strip().strip("'\"")
    return values


class Launcher:
    def __init__(self, data_dir: Path, *, project_dir: Path | None = None) -> None:
        self.data_dir = data_dir.resolve()
        self.project_dir = project_dir or Path(__file__).resolve().parents[2]
        self.services = [cls(self.data_dir) for cls in SERVICE_CLASSES]
        self.state_file = self.data_dir / "state.json"
        self.env_file = self.data_dir / ENV_FILE_NAME

    # -- public API ---------------------------------------------------------------------------
    def up(self, names: list[str] | None = None) -> dict[str, str]:
        """Start every embedded server that is not external and not running; return the env it wrote."""
        with self._locked():
            state = self._load_state()
            env = read_env_file(self.env_file)
            for service in self._selected(names):
                if self._is_external(service):
                    continue
                service_state = state.setdefault(service.name, {})
                if not service.is_running():
                    self._assign_ports(service, service_state)
                env.update(service.start(service_state))
                self._save_state(state)
            if not (os.environ.get("SECRET_KEY") or read_env_file(self.project_dir / ".env").get("SECRET_KEY")):
                # A local secret, generated once, so the dev server runs with DEBUG off like production.
                env["SECRET_KEY"] = state.setdefault("secret_key", secrets.token_urlsafe(48))
                self._save_state(state)
            self._write_env(env)
            return env

    def down(self, names: list[str] | None = None) -> None:
        with self._locked():
            state = self._load_state()
            for service in self._selected(names):
                service.stop(state.get(service.name, {}))

    def status(self) -> list[ServiceStatus]:
        result = []
        for service in self.services:
            if self._is_external(service):
                result.append(ServiceStatus(service.name, "external", None, "configured in the environment"))
            elif service.is_running():
                result.append(ServiceStatus(service.name, "running", service.pid(), str(service.log_file)))
            else:
                result.append(ServiceStatus(service.name, "stopped", None, str(service.log_file)))
        return result

    # -- helpers ------------------------------------------------------------------------------
    def _selected(self, names: list[str] | None) -> list:
        if not names:
            return self.services
        unknown = set(names) - {s.name for s in self.services}
        if unknown:
            raise ValueError(f"unknown service(s): {', '.join(sorted(unknown))}")
        return [s for s in self.services if s.name in names]

    def _is_external(self, service) -> bool:
        dotenv = read_env_file(self.project_dir / ".env")
        return any(os.environ.get(key) or dotenv.get(key) for key in service.env_keys)

    @staticmethod
    def _assign_ports(service, service_state: dict) -> None:
        """Keep the previous ports when they are still free so URLs stay stable across restarts."""
        offsets = getattr(service, "port_offsets", (0,))
        previous = service_state.get("ports") or ([service_state["port"]] if "port" in service_state else [])
        if len(previous) == service.port_count and all(port_is_free(p + off) for p in previous for off in offsets):
            ports = previous
        else:
            ports = find_free_ports(service.port_count, stride_offsets=offsets)
        service_state["ports"] = ports
        service_state["port"] = ports[0]

    def _load_state(self) -> dict:
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}

    def _save_state(self, state: dict) -> None:
        self.state_file.write_text(json.dumps(state, indent=2))
        self.state_file.chmod(0o600)

    def _write_env(self, env: dict[str, str]) -> None:
        lines = ["# Written by `manage.py services up`: where the embedded servers listen.", ""]
        lines += [f"{key}={value}" for key, value in sorted(env.items())]
        self.env_file.write_text("\n".join(lines) + "\n")
        self.env_file.chmod(0o600)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with (self.data_dir / ".lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
