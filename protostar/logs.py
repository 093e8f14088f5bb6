"""Log lines as JSON, each carrying the ids of the job it belongs to.

A worker sets the job's subject (``message_id``, ``document_id`` or ``conversation_id``, and the ``user_id`` it
belongs to) around the whole job (``protostar.workers``); a filter copies them onto every record logged meanwhile, from
rq's own lines to the job's, so ``grep '"message_id": 41'`` finds an answer's whole story across processes.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Callable, Iterator
from typing import Any

_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("protostar_log_context", default=None)

# What each job is about: its first argument names the subject, and a selector finds the user it belongs to. The apps
# register their jobs here (``register_job_subject`` in their ``AppConfig.ready``): this module names no app.
JOB_SUBJECTS: dict[str, tuple[str, Callable[..., Any]]] = {}


def register_job_subject(function: str, *, field: str, owner: Callable[..., Any] | None = None) -> None:
    """Log the jobs running ``function`` (its dotted path, as rq names it) with ``field`` (their first argument) and
    ``user_id`` (``owner(field=…)``, when the subject belongs to a user)."""
    JOB_SUBJECTS[function] = (field, owner)


class ContextFilter(logging.Filter):
    """Adds the current job's ids to a record (as attributes, which the JSON formatter writes as fields)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_context.get() or {}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


@contextlib.contextmanager
def log_context(**ids: Any) -> Iterator[None]:
    """Ids added to every record logged by this thread until the block ends (nested blocks add to the outer)."""
    token = _context.set({**(_context.get() or {}), **{k: v for k, v in ids.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def job_subject(func_name: str, args: tuple) -> dict[str, Any]:
    """The ids a job is about (``{}`` for jobs that are about nothing in particular)."""
    known = JOB_SUBJECTS.get(func_name)
    if known is None or not args:
        return {}
    field, owner = known
    subject: dict[str, Any] = {field: args[0]}
    if owner is None:
        return subject
    try:
        subject["user_id"] = owner(**{field: args[0]})
    except Exception:  # a log field must never fail the job; the job reports the real problem itself
        logging.getLogger(__name__).debug("no owner for %s %s", field, args[0], exc_info=True)
    return subject


def logging_config(*, level: str, fmt: str) -> dict[str, Any]:
    """Django's ``LOGGING``: JSON lines (``fmt="json"``) or plain text, on stderr, with the job context filter."""
    formatters = {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(levelname)s %(name)s %(process)d %(message)s",
            "rename_fields": {"levelname": "level", "name": "logger", "process": "pid"},
            "timestamp": "time",  # ISO 8601, UTC
            "json_ensure_ascii": False,
        },
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    }
    handler = {"class": "logging.StreamHandler", "formatter": fmt, "filters": ["job_context"]}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"job_context": {"()": "protostar.logs.ContextFilter"}},
        "formatters": formatters,
        "handlers": {"console": handler},
        # rq adds its own plain handler only when no ancestor has one: the root's takes its lines too.
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "httpx": {"level": "WARNING"},
            "botocore": {"level": "WARNING"},
        },
    }
