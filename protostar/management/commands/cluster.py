"""``manage.py cluster``: two web nodes behind haproxy, two chat and two knowledge workers and a summaries worker.

Every process uses the configured PostgreSQL, Redis and S3 (``make cluster`` starts the embedded ones first), so
this is the topology of several machines, run on one. Ctrl-C stops it.
"""

from __future__ import annotations

import os
import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from protostar.cluster import Cluster, Topology
from protostar.cluster.balancer import haproxy_binary
from protostar.prometheus import clear as clear_metrics


class Command(BaseCommand):
    help = "Run several web nodes and workers per queue behind a load balancer, on the configured servers."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--port", type=int, default=8000, help="The balancer's port (0: any free one).")
        parser.add_argument("--host", default="127.0.0.1")
        for kind, count in (("web", 2), ("chat", 2), ("knowledge", 2), ("summaries", 1)):
            parser.add_argument(f"--{kind}", type=int, default=count, help=f"{kind} processes (default {count}).")
        parser.add_argument("--no-balancer", action="store_true", help="Serve from the first web node only.")

    def handle(self, *args, **options) -> None:
        balancer = not options["no_balancer"]
        if balancer and haproxy_binary() is None:
            raise CommandError("haproxy is not installed: run scripts/install-balancer.sh as root, or --no-balancer.")
        if options["web"] < 1:
            raise CommandError("--web must be at least 1.")
        run_dir = settings.DATA_DIR / "cluster"
        metrics_dir = run_dir / "metrics"
        metrics_dir.mkdir(parents=True, exist_ok=True)
        clear_metrics(str(metrics_dir))  # figures of an earlier run would be summed with this one's
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
        topology = Topology(
            web=options["web"],
            chat=options["chat"],
            knowledge=options["knowledge"],
            summaries=options["summaries"],
            balancer=balancer,
        )
        cluster = Cluster(
            root=settings.BASE_DIR,
            run_dir=run_dir,
            env=env,
            redis_url=settings.REDIS_URL,
            topology=topology,
            host=options["host"],
            port=options["port"],
        )
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        self.stdout.write("starting the processes…")
        cluster.start()
        try:
            self._report(cluster)
            while not stop.wait(1.0):
                for node in cluster.nodes.values():
                    if not node.alive:
                        self.stderr.write(f"{node.name} exited ({node.process.returncode}); see {node.log_path}")
                        node.killed = True
        finally:
            self.stdout.write("stopping the cluster…")
            cluster.stop()

    def _report(self, cluster: Cluster) -> None:
        self.stdout.write(self.style.SUCCESS(f"Protostar cluster on {cluster.url}/"))
        for node in cluster.nodes.values():
            where = f" on port {node.port}" if node.port else ""
            self.stdout.write(f"  {node.name:<12} pid {node.pid}{where}  log {node.log_path}")
        self.stdout.write(f"  metrics: {cluster.url}/metrics (METRICS_TOKEN or METRICS_ALLOWED_NETWORKS)")
