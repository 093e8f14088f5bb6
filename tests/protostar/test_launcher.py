"""The embedded services launcher: from nothing to running, idempotent, loopback only, skips external parts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import redis

from protostar.services.launcher import Launcher, read_env_file

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fresh_launcher(tmp_path):
    launcher = Launcher(tmp_path / "data")
    yield launcher
    launcher.down()


def _listening_addresses(pid: int) -> set[str]:
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    return {line.split()[3].rsplit(":", 1)[0] for line in out.splitlines() if f"pid={pid}," in line}


@pytest.mark.timeout(180)
def test_services_start_from_nothing_then_second_up_is_a_no_op(fresh_launcher, monkeypatch):
    monkeypatch.setenv("EMBEDDED_POSTGRES_SHARED_BUFFERS", "160MB")
    env = fresh_launcher.up()
    first_pids = {s.name: s.pid for s in fresh_launcher.status()}
    assert all(s.state == "running" for s in fresh_launcher.status())

    with psycopg.connect(env["DATABASE_URL"]) as conn:
        assert conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").fetchone()
        assert conn.execute("SHOW shared_buffers").fetchone()[0] == "160MB"
    assert redis.Redis.from_url(env["REDIS_URL"]).ping()
    assert read_env_file(fresh_launcher.env_file)["S3_ENDPOINT_URL"] == env["S3_ENDPOINT_URL"]

    assert fresh_launcher.up() == env
    assert {s.name: s.pid for s in fresh_launcher.status()} == first_pids

    for pid in first_pids.values():
        assert _listening_addresses(pid) <= {"127.0.0.1"}, "a server listens beyond loopback"


@pytest.mark.timeout(120)
def test_services_restart_on_the_same_urls_after_down(fresh_launcher):
    env = fresh_launcher.up(["redis"])
    fresh_launcher.down(["redis"])
    assert {s.name: s.state for s in fresh_launcher.status()}["redis"] == "stopped"
    assert fresh_launcher.up(["redis"])["REDIS_URL"] == env["REDIS_URL"]
    assert redis.Redis.from_url(env["REDIS_URL"]).ping()


def test_redis_refuses_clients_without_the_password(fresh_launcher):
    env = fresh_launcher.up(["redis"])
    anonymous = env["REDIS_URL"].replace(env["REDIS_URL"].split("@")[0].split("//")[1] + "@", "")
    with pytest.raises(redis.AuthenticationError):
        redis.Redis.from_url(anonymous).ping()


def test_part_configured_externally_is_not_started(fresh_launcher, monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://redis.example.internal:6379/0")
    fresh_launcher.up(["redis"])
    states = {s.name: s.state for s in fresh_launcher.status()}
    assert states["redis"] == "external"
    assert "REDIS_URL" not in read_env_file(fresh_launcher.env_file)


def test_embedded_s3_server_starts_with_a_private_documents_bucket(fresh_launcher):
    from minio import Minio
    from minio.error import S3Error

    env = fresh_launcher.up(["s3"])
    endpoint = env["S3_ENDPOINT_URL"].split("://", 1)[1]
    client = Minio(endpoint, access_key=env["S3_ACCESS_KEY"], secret_key=env["S3_SECRET_KEY"], secure=False)
    assert client.bucket_exists(bucket_name=env["S3_BUCKET"])
    anonymous = Minio(endpoint, secure=False)
    with pytest.raises(S3Error):
        anonymous.list_objects(bucket_name=env["S3_BUCKET"]).__next__()


def test_postgres_page_cache_is_a_quarter_of_memory_within_bounds(monkeypatch):
    import os

    from protostar.services.postgres import shared_buffers

    monkeypatch.delenv("EMBEDDED_POSTGRES_SHARED_BUFFERS", raising=False)
    total_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
    assert shared_buffers() == f"{min(max(total_mb // 4, 128), 4096)}MB"

    def machine_with(ram_mib: int) -> None:
        monkeypatch.setattr(os, "sysconf", lambda name: 4096 if name == "SC_PAGE_SIZE" else ram_mib * 256)

    machine_with(256)
    assert shared_buffers() == "128MB"
    machine_with(8 * 1024)
    assert shared_buffers() == "2048MB"
    machine_with(64 * 1024)
    assert shared_buffers() == "4096MB"


def _session_with_bootstrap(tmp_path, data_dir, **env) -> subprocess.CompletedProcess:
    """A pytest session of one trivial test with the suite's bootstrap plugin, on its own data directory."""
    (tmp_path / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
    environment = {**os.environ, "PROTOSTAR_DATA_DIR": str(data_dir), **env}
    if not env:
        environment.pop("PROTOSTAR_KEEP_TEST_SERVERS", None)
    # This session's metrics directory (set in the environment by the settings): the inner session would clear it
    # at its start, under this process's open metric files. It keeps its own beside its data.
    environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.bootstrap"]
    command += ["-c", os.devnull, "--rootdir", str(tmp_path), str(tmp_path / "test_nothing.py")]
    return subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=170)


@pytest.mark.timeout(240)
def test_suite_stops_the_servers_it_started_unless_asked_to_keep_them(tmp_path):
    data_dir = tmp_path / "data"
    launcher = Launcher(data_dir)
    try:
        done = _session_with_bootstrap(tmp_path, data_dir)
        assert done.returncode == 0, done.stdout + done.stderr
        assert [s.state for s in launcher.status()] == ["stopped"] * 3

        kept = _session_with_bootstrap(tmp_path, data_dir, PROTOSTAR_KEEP_TEST_SERVERS="1")
        assert kept.returncode == 0, kept.stdout + kept.stderr
        assert [s.state for s in launcher.status()] == ["running"] * 3

        # Servers already up (kept) are not this session's: it leaves them running.
        again = _session_with_bootstrap(tmp_path, data_dir)
        assert again.returncode == 0, again.stdout + again.stderr
        assert [s.state for s in launcher.status()] == ["running"] * 3
    finally:
        launcher.down()
