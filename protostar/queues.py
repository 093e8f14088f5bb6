"""The process's Redis clients for the rq queues, made once and shared by its threads.

``django_rq.get_connection()`` and ``get_queue()`` build a new client, with a new connection pool, on every call: each
enqueue, lease or stop request then opened a TCP connection, authenticated, sent the client handshake and dropped the
connection again. One client per queue server and process keeps its pool (redis-py clients are thread-safe, and a
pool used after a fork reconnects by itself).
"""

from __future__ import annotations

import os
import threading

import django_rq
import redis
from django_rq.queues import DjangoRQ

_lock = threading.Lock()
_clients: dict[tuple[int, str], redis.Redis] = {}


def connection(queue_name: str = "default") -> redis.Redis:
    """The shared client for ``queue_name``'s Redis server (as configured in ``RQ_QUEUES``)."""
    # Not at module level: django_rq.settings reads the Django settings when imported.
    from django_rq.settings import QUEUES

    key = (os.getpid(), repr(sorted(QUEUES[queue_name].items())))
    client = _clients.get(key)
    if client is None:
        with _lock:
            client = _clients.get(key) or _clients.setdefault(key, django_rq.get_connection(queue_name))
    return client


def queue(queue_name: str) -> DjangoRQ:
    """``django_rq.get_queue(queue_name)`` on the shared client (enqueueing on commit, as configured)."""
    return django_rq.get_queue(queue_name, connection=connection(queue_name))
