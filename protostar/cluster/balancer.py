"""haproxy in front of the web nodes: WebSocket upgrades, long idle timeouts, failover to a live node.

The configuration is generated for the nodes of a run; ``docs/operations.md`` shows the same rules for production.
"""

from __future__ import annotations

import csv
import io
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

# Why each rule: an answer's socket sits idle between questions (timeout tunnel/client/server), a killed node must
# not swallow new connections (checks every 500 ms, retries redispatched to another node), a client must not choose
# the address daphne reports (X-Forwarded-For replaced, not appended), and /metrics is not for the public side.
# No maxconn: haproxy derives it from the process's open-file limit (raise that limit for many sockets).
CONFIG = """\
global
    stats socket {stats_socket} mode 600 level admin
    log stderr format short local0 notice

defaults
    mode http
    log global
    option httplog
    option redispatch 1
    retries 3
    timeout connect 2s
    timeout http-request 15s
    timeout queue 10s
    timeout client 1h
    timeout server 1h
    timeout tunnel 1h
    timeout client-fin 30s
    timeout server-fin 30s

frontend protostar
    bind {bind}:{port}
    http-request del-header X-Forwarded-For
    option forwardfor
    http-request deny deny_status 403 if {{ path_beg /metrics }} !{{ src {metrics_networks} }}
    default_backend web

backend web
    balance leastconn
    http-response set-header X-Served-By %s
{servers}
"""


@dataclass(frozen=True)
class Backend:
    name: str
    host: str
    port: int


def haproxy_binary() -> str | None:
    return shutil.which("haproxy") or next((p for p in ("/usr/sbin/haproxy",) if Path(p).exists()), None)


def render_config(
    *, bind: str, port: int, backends: list[Backend], stats_socket: Path, metrics_networks: str = "127.0.0.0/8"
) -> str:
    servers = "\n".join(f"    server {b.name} {b.host}:{b.port} check inter 500ms fall 2 rise 2" for b in backends)
    return CONFIG.format(
        bind=bind, port=port, servers=servers, stats_socket=stats_socket, metrics_networks=metrics_networks
    )


def server_states(stats_socket: Path) -> dict[str, str]:
    """``{server name: UP/DOWN/…}`` of the web backend, from haproxy's stats socket."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        sock.connect(str(stats_socket))
        sock.sendall(b"show stat\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    text = b"".join(chunks).decode().lstrip("# ")
    rows = csv.DictReader(io.StringIO(text))
    return {row["svname"]: row["status"] for row in rows if row["pxname"] == "web" and row["svname"] != "BACKEND"}
