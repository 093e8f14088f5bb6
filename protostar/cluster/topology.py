"""Several web nodes and workers of every queue on one PostgreSQL, Redis and S3, behind a load balancer.

Each process is started with the command ``Procfile`` gives for its kind, all at once, and the cluster is ready when
every web node listens, every worker has registered with Redis and the balancer sees every web node up.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis
from rq import Worker

from protostar.cluster.balancer import Backend, haproxy_binary, render_config, server_states
from protostar.cluster.procfile import read_procfile, with_option
from protostar.services.process import find_free_ports, port_is_free, wait_for_port

WORKER_KINDS = ("chat", "knowledge", "summaries")


@dataclass
class Node:
    name: str
    kind: str
    argv: list[str]
    log_path: Path
    port: int | None = None
    process: subprocess.Popen | None = None
    killed: bool = False  # on purpose: its exit is expected

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class Topology:
    web: int = 2
    chat: int = 2
    knowledge: int = 2
    summaries: int = 1
    balancer: bool = True


@dataclass
class Cluster:
    """``env`` is the environment every process gets (what it does not set, each process reads from ``.env`` and
    the launcher's ``services.env`` as usual); ``redis_url`` is the Redis the workers register with (the queues');
    ``run_dir`` holds the balancer's configuration and the logs of this run."""

    root: Path
    run_dir: Path
    env: dict[str, str]
    redis_url: str
    topology: Topology = field(default_factory=Topology)
    host: str = "127.0.0.1"
    port: int = 0  # the balancer's; 0 picks a free one
    nodes: dict[str, Node] = field(default_factory=dict)
    balancer: Node | None = None

    # --- addresses -------------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """Where clients go: the balancer, or the first web node when running without one."""
        port = self.port if self.balancer else self.web_nodes[0].port
        return f"http://{self.host}:{port}"

    @property
    def web_nodes(self) -> list[Node]:
        return [node for node in self.nodes.values() if node.kind == "web"]

    def workers(self, kind: str) -> list[Node]:
        return [node for node in self.nodes.values() if node.kind == kind]

    @property
    def stats_socket(self) -> Path:
        return self.run_dir / "haproxy.sock"

    # --- life cycle ------------------------------------------------------------------------------------------
    def start(self, timeout: float = 180.0) -> Cluster:
        (self.run_dir / "logs").mkdir(parents=True, exist_ok=True)
        self._plan()
        for node in self.nodes.values():
            self._launch(node)
        if self.topology.balancer:
            self._start_balancer()
        try:
            self.wait_ready(timeout=timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _plan(self) -> None:
        commands = read_procfile(self.root / "Procfile")
        ports = find_free_ports(self.topology.web)
        for index in range(self.topology.web):
            argv = with_option(with_option(commands["web"], "-p", str(ports[index])), "-b", self.host)
            self._add(Node(f"web{index + 1}", "web", argv, self._log("web", index), port=ports[index]))
        for kind in WORKER_KINDS:
            for index in range(getattr(self.topology, kind)):
                self._add(Node(f"{kind}{index + 1}", kind, list(commands[kind]), self._log(kind, index)))

    def _add(self, node: Node) -> None:
        self.nodes[node.name] = node

    def _log(self, kind: str, index: int) -> Path:
        return self.run_dir / "logs" / f"{kind}{index + 1}.log"

    def _launch(self, node: Node) -> None:
        with node.log_path.open("ab") as log:
            node.process = subprocess.Popen(
                node.argv, cwd=self.root, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def _start_balancer(self) -> None:
        binary = haproxy_binary()
        if binary is None:
            raise RuntimeError("haproxy is not installed (scripts/install-balancer.sh installs it as root)")
        if not self.port or not port_is_free(self.port):
            self.port = find_free_ports(1)[0]
        backends = [Backend(node.name, self.host, node.port or 0) for node in self.web_nodes]
        config = self.run_dir / "haproxy.cfg"
        config.write_text(
            render_config(bind=self.host, port=self.port, backends=backends, stats_socket=self.stats_socket)
        )
        self.balancer = Node(
            "balancer", "balancer", [binary, "-db", "-f", str(config)], self.run_dir / "logs" / "haproxy.log"
        )
        self._launch(self.balancer)

    def wait_ready(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        pending = {name for name, node in self.nodes.items() if not node.killed}
        while pending:
            self._check_alive()
            registered = self._registered_pids()
            for name in list(pending):
                if self._ready(self.nodes[name], registered):
                    pending.discard(name)
            if pending and time.monotonic() > deadline:
                raise TimeoutError(f"not ready after {timeout:.0f} s: {', '.join(sorted(pending))}")
            if pending:
                time.sleep(0.1)
        if self.balancer is not None:
            self.wait_balanced(deadline=deadline)

    def _ready(self, node: Node, registered: set[int]) -> bool:
        if node.kind == "web":
            return wait_for_port(node.port or 0, timeout=0.05, host=self.host)
        return node.pid in registered

    def wait_balanced(self, *, deadline: float, expect: set[str] | None = None) -> None:
        """Until the balancer reports exactly ``expect`` (default: every live web node) up."""
        expect = expect if expect is not None else {node.name for node in self.web_nodes if node.alive}
        while True:
            with contextlib.suppress(OSError):
                states = server_states(self.stats_socket)
                if {name for name, state in states.items() if state.startswith("UP")} == expect:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the balancer does not see {sorted(expect)} up")
            time.sleep(0.1)

    def _check_alive(self) -> None:
        for node in [*self.nodes.values(), *([self.balancer] if self.balancer else [])]:
            if node.process is not None and node.process.poll() is not None and not node.killed:
                tail = node.log_path.read_text(errors="replace")[-2000:] if node.log_path.exists() else ""
                raise RuntimeError(f"{node.name} exited with {node.process.returncode}:\n{tail}")

    def _registered_pids(self) -> set[int]:
        with redis.Redis.from_url(self.redis_url) as conn:
            return {worker.pid for worker in Worker.all(connection=conn)}

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Kill a node's process (SIGKILL: no goodbye, as a machine or container dying)."""
        node = self.nodes[name]
        node.killed = True
        assert node.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(node.process.pid, sig)
        node.process.wait(30)

    def stop(self) -> None:
        """Stop every process: the balancer first (no new connections), then web nodes, then workers (warm)."""
        order = [self.balancer, *self.web_nodes, *[n for n in self.nodes.values() if n.kind != "web"]]
        for node in order:
            if node is not None and node.alive:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(node.process.pid, signal.SIGTERM)  # type: ignore[union-attr]
        for node in order:
            if node is None or node.process is None:
                continue
            try:
                node.process.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(node.process.pid, signal.SIGKILL)
                node.process.wait(5)
