"""Reads for usage and quotas: the limit a user is over (if any), and the ledger for the admin's page and CSV."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.contrib.auth import get_user_model
from django.db.models import F, Q, Sum
from django.utils import timezone

from usage.models import QuotaLimit, UsageDay

TOKEN_FIELDS = ("prompt_tokens", "completion_tokens", "summary_prompt_tokens", "summary_completion_tokens")


@dataclass(frozen=True)
class QuotaBreach:
    """A limit that is used up: what it is, and when its period starts again."""

    limit: QuotaLimit
    what: str  # "tokens" or "answers"
    used: int
    allowed: int
    resets_at: datetime


def period_bounds(period: str, today: date) -> tuple[date, datetime]:
    """The first day of the current period and the moment the next one starts (midnight, ``TIME_ZONE``)."""
    if period == QuotaLimit.Period.MONTH:
        start = today.replace(day=1)
        following = (start + timedelta(days=32)).replace(day=1)
    else:
        start, following = today, today + timedelta(days=1)
    return start, timezone.make_aware(datetime.combine(following, time.min))


def _used(limit: QuotaLimit, since: date) -> tuple[int, int]:
    rows = UsageDay.objects.filter(day__gte=since)
    rows = rows.filter(user_id=limit.user_id) if limit.user_id else rows.filter(user__groups=limit.group_id)
    totals = rows.aggregate(
        answers=Sum("answers"), tokens=Sum(sum((F(name) for name in TOKEN_FIELDS[1:]), F(TOKEN_FIELDS[0])))
    )
    return totals["answers"] or 0, totals["tokens"] or 0


def quota_breach(*, user) -> QuotaBreach | None:
    """The first used-up limit among the user's own and their groups' (a group's limit counts its members together);
    ``None`` when the user may ask. The one that resets last is reported: asking before then is refused again."""
    limits = QuotaLimit.objects.filter(Q(user=user) | Q(group__in=user.groups.all())).select_related("user", "group")
    today = timezone.localdate()
    breaches = []
    for limit in limits:
        since, resets_at = period_bounds(limit.period, today)
        answers, tokens = _used(limit, since)
        if limit.max_answers is not None and answers >= limit.max_answers:
            breaches.append(QuotaBreach(limit, "answers", answers, limit.max_answers, resets_at))
        if limit.max_tokens is not None and tokens >= limit.max_tokens:
            breaches.append(QuotaBreach(limit, "tokens", tokens, limit.max_tokens, resets_at))
    return max(breaches, key=lambda breach: breach.resets_at) if breaches else None


@dataclass(frozen=True)
class UsageRow:
    label: str
    answers: int
    prompt_tokens: int
    completion_tokens: int
    summary_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens + self.summary_tokens


def _rows(queryset, key: str) -> list[dict]:
    return list(
        queryset.values(key)
        .annotate(
            answers_sum=Sum("answers"),
            prompt_sum=Sum("prompt_tokens"),
            completion_sum=Sum("completion_tokens"),
            summary_sum=Sum(F("summary_prompt_tokens") + F("summary_completion_tokens")),
        )
        .order_by(key)
    )


def usage_by_day(*, since: date, until: date, user_id: int | None = None) -> list[UsageRow]:
    """One row per day from ``since`` to ``until`` (days without usage included, at zero)."""
    queryset = UsageDay.objects.filter(day__gte=since, day__lte=until)
    if user_id is not None:
        queryset = queryset.filter(user_id=user_id)
    found = {row["day"]: row for row in _rows(queryset, "day")}
    rows = []
    for offset in range((until - since).days + 1):
        day = since + timedelta(days=offset)
        row = found.get(day, {})
        rows.append(
            UsageRow(
                day.isoformat(),
                row.get("answers_sum") or 0,
                row.get("prompt_sum") or 0,
                row.get("completion_sum") or 0,
                row.get("summary_sum") or 0,
            )
        )
    return rows


def usage_by_user(*, since: date, until: date) -> list[tuple[int, UsageRow]]:
    """(user id, totals) for every user with usage in the range, biggest spender first."""
    rows = _rows(UsageDay.objects.filter(day__gte=since, day__lte=until), "user_id")
    names = dict(get_user_model().objects.filter(pk__in=[r["user_id"] for r in rows]).values_list("pk", "username"))
    result = [
        (
            row["user_id"],
            UsageRow(
                names.get(row["user_id"], str(row["user_id"])),
                row["answers_sum"] or 0,
                row["prompt_sum"] or 0,
                row["completion_sum"] or 0,
                row["summary_sum"] or 0,
            ),
        )
        for row in rows
    ]
    return sorted(result, key=lambda item: (-item[1].total_tokens, item[1].label))


def usage_ledger(*, since: date, until: date):
    """Every (user, day) row in the range for the CSV export, oldest first."""
    return (
        UsageDay.objects.filter(day__gte=since, day__lte=until).select_related("user").order_by("day", "user__username")
    )
