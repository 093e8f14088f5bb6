"""System checks for what settings alone cannot prove: the database has pgvector."""

from __future__ import annotations

from django.core.checks import Error, Tags, register
from django.db import connection
from django.db.utils import DatabaseError


@register(Tags.database)
def check_vector_extension(app_configs, databases=None, **kwargs) -> list[Error]:
    # Database checks only run when asked for (migrate, check --database); they must not open a connection otherwise.
    if not databases or "default" not in databases:
        return []
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            row = cursor.fetchone()
            cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
            available = cursor.fetchone()
    except DatabaseError as exc:
        return [Error(f"Could not query the database for the vector extension: {exc}", id="protostar.E001")]
    if row or available:
        # Available but not yet created is fine before `migrate`, which creates it.
        return []
    return [
        Error(
            "The PostgreSQL server has no pgvector extension.",
            hint="Install pgvector on the server (the embedded PostgreSQL ships it).",
            id="protostar.E002",
        )
    ]
