"""Response headers every page of ours carries."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.utils.deprecation import MiddlewareMixin

# No inline script or style anywhere: the page's JS and CSS are static files. Images only from us (a markdown image
# in an answer must not become a request to somewhere else), sockets to our own host.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self' ws: wss:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

# The Django admin and the rq dashboard ship inline scripts; they are staff-only and keep Django's own protections.
EXEMPT_PREFIXES = ("/admin/",)


class ContentSecurityPolicyMiddleware(MiddlewareMixin):
    """Sync and async (the mixin): a sync-only middleware would put every request daphne serves through the one
    thread Django keeps for sync code."""

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if not request.path.startswith(EXEMPT_PREFIXES):
            response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response
