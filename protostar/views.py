from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from protostar.health import health_report


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness of every dependency; 503 when any is down so load balancers and operators see it."""
    report = health_report()
    if not (request.user.is_authenticated and request.user.is_staff):
        # Anonymous probes get the verdict per part, not internal error text.
        report = {
            "ok": report["ok"],
            "parts": {k: {"ok": v["ok"]} for k, v in report["parts"].items()},
            "stalled_queues": report["stalled_queues"],
        }
    return JsonResponse(report, status=200 if report["ok"] else 503)
