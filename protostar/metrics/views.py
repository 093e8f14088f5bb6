"""``GET /metrics``: every process's figures merged, for Prometheus; never open to anonymous scrapers.

A scraper is let in by a bearer token (``METRICS_TOKEN``, compared in constant time) or by its address
(``METRICS_ALLOWED_NETWORKS``, CIDR blocks, matched against the address daphne reports). With neither configured
the endpoint refuses everyone.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess

from protostar.metrics.collectors import QueueCollector
from protostar.prometheus import forget_dead_processes

logger = logging.getLogger(__name__)


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not scrape_allowed(request):
        logger.warning("refused a /metrics scrape from %s", request.META.get("REMOTE_ADDR", "?"))
        return JsonResponse(
            {"code": "forbidden", "detail": "Metrics need a scrape token or an allowed network."}, status=403
        )
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)


def exposition() -> bytes:
    """Every process's figures (multiprocess mode) or this process's, then the queues read from Redis."""
    cluster = CollectorRegistry()
    cluster.register(QueueCollector())
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if not directory:
        return generate_latest(REGISTRY) + generate_latest(cluster)
    forget_dead_processes(directory)
    multiprocess.MultiProcessCollector(cluster, path=directory)
    return generate_latest(cluster)


def scrape_allowed(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer ") and hmac.compare_digest(header[7:].encode(), token.encode()):
        return True
    return address_allowed(request.META.get("REMOTE_ADDR", ""), settings.METRICS_ALLOWED_NETWORKS)


def address_allowed(address: str, networks: list[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(network, strict=False) for network in networks)
