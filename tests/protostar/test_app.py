"""The Django side of the foundation: health endpoint, ASGI routing, start-up configuration errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from channels.testing import HttpCommunicator, WebsocketCommunicator

from protostar.services.launcher import Launcher, read_env_file
from tests.conftest import ROOT, wait_until


@pytest.mark.django_db
def test_healthz_is_200_when_every_part_and_worker_is_up(client, live_workers, chat_worker):
    response = client.get("/healthz")
    assert response.status_code == 200, response.content
    assert response.json()["ok"] is True
    assert set(response.json()["parts"]) == {"database", "redis", "storage", "workers"}


@pytest.mark.django_db
@pytest.mark.timeout(120)
def test_healthz_is_503_while_storage_is_down(client, admin_client, live_workers, chat_worker):
    launcher = Launcher(Path(os.environ["PROTOSTAR_DATA_DIR"]))
    launcher.down(["s3"])
    try:
        response = admin_client.get("/healthz")
        assert response.status_code == 503
        parts = response.json()["parts"]
        assert parts["storage"]["ok"] is False and parts["database"]["ok"] is True
        assert parts["storage"]["detail"], "staff see why a part is down"
        assert "detail" not in client.get("/healthz").json()["parts"]["storage"], "anonymous probes see no internals"
    finally:
        launcher.up(["s3"])
    wait_until(lambda: client.get("/healthz").status_code == 200, timeout=60, message="health back to 200")


@pytest.mark.django_db
def test_healthz_reports_queues_without_a_worker(admin_client, monkeypatch):
    from protostar import health

    monkeypatch.setattr(health, "workers_by_queue", lambda: {"chat": ["w1"], "knowledge": [], "summaries": ["w2"]})
    response = admin_client.get("/healthz")
    assert response.status_code == 503
    assert "knowledge" in response.json()["parts"]["workers"]["detail"]


@pytest.mark.django_db(transaction=True)
def test_asgi_app_answers_http():
    from protostar.asgi import application

    async def fetch():
        communicator = HttpCommunicator(application, "GET", "/accounts/login/", headers=[(b"host", b"127.0.0.1")])
        return await communicator.get_response(timeout=10)

    from asgiref.sync import async_to_sync

    response = async_to_sync(fetch)()
    assert response["status"] == 200
    assert b"Sign in" in response["body"]


@pytest.mark.django_db(transaction=True)
def test_asgi_app_rejects_websocket_from_a_foreign_origin():
    from asgiref.sync import async_to_sync

    from protostar.asgi import application

    async def connect():
        communicator = WebsocketCommunicator(
            application, "/ws/chat/", headers=[(b"origin", b"https://evil.example"), (b"host", b"127.0.0.1")]
        )
        connected, _ = await communicator.connect(timeout=5)
        await communicator.disconnect()
        return connected

    assert async_to_sync(connect)() is False


def test_an_unreachable_database_is_reported_with_its_reason_not_a_pool_timeout(tmp_path):
    # Nothing listens on port 1: the probe must say the connection was refused, not wait out the pool.
    probe = "import json; from protostar.health import health_report; print(json.dumps(health_report()))"
    env = {**os.environ, "DATABASE_URL": "postgres://protostar:x@127.0.0.1:1/protostar", "DB_POOL_TIMEOUT": "30"}
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["ok"] is False
    database = report["parts"]["database"]
    assert database["ok"] is False and "Connection refused" in database["detail"], database
    assert database["ms"] < 30_000


def _run_check(tmp_path: Path, **overrides: str) -> subprocess.CompletedProcess:
    """Run `manage.py check` with a services.env copied from the test one, minus/plus the given values."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    values = read_env_file(Path(os.environ["PROTOSTAR_DATA_DIR"]) / "services.env")
    values.pop("SECRET_KEY", None)
    (data_dir / "services.env").write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG", "DATABASE_URL"}}
    env.update({"PROTOSTAR_DATA_DIR": str(data_dir), "SECRET_KEY": "x" * 50, **overrides})
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_missing_secret_key_in_production_mode_fails_at_start_up(tmp_path):
    result = _run_check(tmp_path, SECRET_KEY="", DEBUG="false")
    assert result.returncode != 0
    assert "SECRET_KEY is not set and DEBUG is off" in result.stderr


def test_bad_database_url_fails_at_start_up_with_a_readable_message(tmp_path):
    result = _run_check(tmp_path, DATABASE_URL="mysql://db.example/protostar")
    assert result.returncode != 0
    assert "DATABASE_URL must be a postgres" in result.stderr


def test_non_numeric_setting_fails_at_start_up_with_a_readable_message(tmp_path):
    result = _run_check(tmp_path, UPLOAD_MAX_BYTES="fifty megabytes")
    assert result.returncode != 0
    assert "UPLOAD_MAX_BYTES has an invalid value 'fifty megabytes'" in result.stderr


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"DB_CONN_MAX_AGE": "60"}, "DB_CONN_MAX_AGE needs DB_POOL_MAX_SIZE=0"),
        ({"CHAT_QUERY_NICENESS": "25"}, "CHAT_QUERY_NICENESS must be between 0 and 19, not 25"),
    ],
)
def test_contradictory_or_out_of_range_settings_fail_at_start_up(tmp_path, overrides, message):
    result = _run_check(tmp_path, **overrides)
    assert result.returncode != 0
    assert message in result.stderr


def test_connections_without_a_pool_are_a_valid_choice(tmp_path):
    assert _run_check(tmp_path, DB_POOL_MAX_SIZE="0", DB_CONN_MAX_AGE="60").returncode == 0


def test_valid_configuration_passes_the_checks(tmp_path):
    result = _run_check(tmp_path)
    assert result.returncode == 0, result.stderr


@pytest.mark.django_db
def test_rq_dashboard_is_reachable_for_staff_only(admin_client, client, django_user_model):
    assert admin_client.get("/admin/rq/").status_code == 200
    assert b"knowledge" in admin_client.get("/admin/rq/").content
    user = django_user_model.objects.create_user("plain", password="pw-long-enough-9")
    client.force_login(user)
    response = client.get("/admin/rq/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_production_settings_pass_the_deployment_checks(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={
            **os.environ,
            "PROTOSTAR_HTTPS": "true",
            "SECRET_KEY": "k" * 30 + "Z9!x" * 10,
            "ALLOWED_HOSTS": "chat.example.com",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
