"""Bounds shared by the API's parameters: ids and pages PostgreSQL can take, dates it can compare."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from ninja import Field, Schema
from ninja.pagination import LimitOffsetPagination
from pydantic import AfterValidator

MAX_ID = 2**63 - 1
MAX_PAGE = 200


def _utc(value: datetime) -> datetime:
    # PostgreSQL refuses offsets beyond ±15:59 (any offset is valid ISO 8601): compare in UTC; naive means UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]


def _no_nul(value: str) -> str:
    # PostgreSQL cannot store NUL in text; JSON and forms can carry it ("\u0000").
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Text = Annotated[str, AfterValidator(_no_nul)]


class Pages(LimitOffsetPagination):
    """``limit`` (1–200, default 50) items from ``offset``; the answer holds ``items`` and the total ``count``."""

    class Input(Schema):
        limit: int = Field(50, ge=1, le=MAX_PAGE)
        offset: int = Field(0, ge=0, le=2**31 - 1)
