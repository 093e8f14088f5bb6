"""The suite's own footing: a transactional test's closing truncation survives a deadlock with a worker's
transaction (``flush_outlasts_a_deadlock`` in conftest.py)."""

from __future__ import annotations

import re
import threading
import time

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.color import no_style
from django.db import connection

from tests.conftest import wait_until, worker_database_url


def truncation_order() -> list[str]:
    tables = connection.introspection.django_table_names(only_existing=True, include_views=False)
    statement = next(sql for sql in connection.ops.sql_flush(no_style(), tables) if sql.startswith("TRUNCATE"))
    return re.findall(r'"(\w+)"', statement)


@pytest.mark.django_db(transaction=True)
def test_a_truncation_that_deadlocks_with_another_transaction_is_tried_again_and_empties_the_tables():
    from django.contrib.auth import get_user_model

    get_user_model().objects.create(username="left-behind")
    order = truncation_order()
    first, last = order[0], order[-1]
    url = worker_database_url().replace("postgresql+psycopg", "postgresql")
    outcome: dict[str, object] = {}

    def flush() -> None:
        try:
            call_command("flush", interactive=False, verbosity=0)
            outcome["flushed"] = True
        except Exception as exc:  # what the test reports
            outcome["error"] = exc
        finally:
            connection.close()

    with psycopg.connect(url) as other:
        # Another transaction reads the table the truncation locks last, the truncation waits for it, then the other
        # transaction reads the table the truncation already holds: a deadlock, found first by the truncation.
        other.execute(f'SELECT 1 FROM "{last}" LIMIT 1')
        truncating = threading.Thread(target=flush)
        truncating.start()
        wait_until(lambda: waiting_for_a_lock(url), timeout=10, message="the truncation to wait")
        started = time.monotonic()
        other.execute(f'SELECT 1 FROM "{first}" LIMIT 1')
        assert time.monotonic() - started < 30
        other.rollback()
    truncating.join(30)
    assert outcome == {"flushed": True}
    assert not get_user_model().objects.exists()


def waiting_for_a_lock(url: str) -> bool:
    with psycopg.connect(url) as probe:
        return bool(probe.execute("SELECT count(*) FROM pg_locks WHERE NOT granted").fetchone()[0])
