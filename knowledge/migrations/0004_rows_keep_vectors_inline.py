"""Keep a chunk's vector and keyword column, and a window's vectors, in the row instead of the TOAST table.

A chunk row (text, keyword terms, a 1.5 KB vector, the tsvector) is 3–5 KB, over PostgreSQL's 2 KB default: the
vector and the tsvector were moved out of line, so every search candidate cost a TOAST index lookup per value (the
keyword list at 100k chunks 45 → 22 ms, the whole search 44 → 32 ms p50; docs/benchmarks.md). ``toast_tuple_target``
only affects rows written from now on; small tables are rewritten here. A rewrite rebuilds the table's indexes, the
HNSW ones included, which for a large table can take many minutes: those are left for the operator (see README).
"""

import logging

from django.db import migrations

logger = logging.getLogger(__name__)

TABLES = ("knowledge_chunk", "knowledge_chunkwindow")
# Rows up to a page (8 KB) stay whole; larger ones are still compressed and moved out, largest column first.
ROW_TARGET = 8160
# Tables up to this many rows are rewritten by the migration (seconds); larger ones are left as they are.
REWRITE_MAX_ROWS = 20_000


def rewrite_small_tables(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        for table in TABLES:
            cursor.execute(f"SELECT count(*) FROM (SELECT 1 FROM {table} LIMIT %s) t", [REWRITE_MAX_ROWS + 1])
            (rows,) = cursor.fetchone()
            if rows == 0:
                continue
            if rows > REWRITE_MAX_ROWS:
                logger.warning(
                    "%s has more than %s rows and keeps its old row layout until its rows are rewritten: run "
                    "`VACUUM FULL %s` in a quiet hour (it locks the table and rebuilds its indexes).",
                    table,
                    REWRITE_MAX_ROWS,
                    table,
                )
                continue
            cursor.execute(f"VACUUM FULL {table}")


class Migration(migrations.Migration):
    # VACUUM cannot run inside a transaction.
    atomic = False

    dependencies = [
        ("knowledge", "0003_chunk_windows_language"),
    ]

    operations = [
        *(
            migrations.RunSQL(
                f"ALTER TABLE {table} SET (toast_tuple_target = {ROW_TARGET})",
                f"ALTER TABLE {table} RESET (toast_tuple_target)",
            )
            for table in TABLES
        ),
        migrations.RunPython(rewrite_small_tables, migrations.RunPython.noop),
    ]
