"""WSGI entry point (the admin and pages work under WSGI too; WebSockets need ASGI)."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "protostar.settings")
application = get_wsgi_application()
