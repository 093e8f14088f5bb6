"""Writes for the usage ledger: one upsert per finished answer or memory summary, inside the caller's transaction."""

from __future__ import annotations

from datetime import date

from django.db import connection
from django.utils import timezone

from usage.models import UsageDay

_UPSERT = f"""
INSERT INTO {UsageDay._meta.db_table}
    (user_id, day, answers, prompt_tokens, completion_tokens, summary_prompt_tokens, summary_completion_tokens)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (user_id, day) DO UPDATE SET
    answers = {UsageDay._meta.db_table}.answers + EXCLUDED.answers,
    prompt_tokens = {UsageDay._meta.db_table}.prompt_tokens + EXCLUDED.prompt_tokens,
    completion_tokens = {UsageDay._meta.db_table}.completion_tokens + EXCLUDED.completion_tokens,
    summary_prompt_tokens = {UsageDay._meta.db_table}.summary_prompt_tokens + EXCLUDED.summary_prompt_tokens,
    summary_completion_tokens = {UsageDay._meta.db_table}.summary_completion_tokens + EXCLUDED.summary_completion_tokens
"""


def usage_record(
    *,
    user_id: int,
    answers: int = 0,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    summary_prompt_tokens: int = 0,
    summary_completion_tokens: int = 0,
    day: date | None = None,
) -> None:
    """Add to the user's row of the day. One statement (an upsert), so concurrent answers never lose an increment;
    callers run it in the transaction that stores what it counts, so a counted thing is counted once."""
    values = (answers, prompt_tokens, completion_tokens, summary_prompt_tokens, summary_completion_tokens)
    if not any(values):
        return
    with connection.cursor() as cursor:
        cursor.execute(_UPSERT, [user_id, day or timezone.localdate(), *values])
