"""Launcher for the embedded PostgreSQL, Redis and S3 servers used in development and tests.

Each part is skipped when the environment (or the project's ``.env``) already points at an external
server. The URLs chosen are written to ``<data dir>/services.env``, which the settings module reads.
"""

from __future__ import annotations

from protostar.services.launcher import Launcher, ServiceStatus

__all__ = ["Launcher", "ServiceStatus"]
