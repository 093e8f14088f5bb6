"""Server-rendered bar charts for the usage page: plain SVG geometry computed here, drawn by the template (no
script, no CDN; readable at a glance and in a screenshot)."""

from __future__ import annotations

from dataclasses import dataclass

from usage.selectors import UsageRow

WIDTH = 900
HEIGHT = 220
LABEL_ROOM = 40  # below the bars, for the dates
TOP_ROOM = 18  # above the tallest bar, for its value


@dataclass(frozen=True)
class Segment:
    y: float
    height: float
    css: str
    title: str


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    label: str
    show_label: bool
    total: int
    total_label: str
    top: float
    segments: list[Segment]


def compact(value: int) -> str:
    """1234 → "1.2k", 2500000 → "2.5M": axis and bar labels stay short."""
    for limit, suffix in ((1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")):
        if value >= limit:
            return f"{value / limit:.1f}".rstrip("0").rstrip(".") + suffix
    return str(value)


def daily_token_bars(rows: list[UsageRow]) -> dict:
    """Stacked bars (prompt, completion, memory tokens) per day, scaled to the busiest day."""
    peak = max((row.total_tokens for row in rows), default=0) or 1
    plot = HEIGHT - LABEL_ROOM - TOP_ROOM
    step = WIDTH / max(len(rows), 1)
    every = max(1, len(rows) // 10)  # at most ~10 date labels
    bars = []
    for index, row in enumerate(rows):
        bottom = HEIGHT - LABEL_ROOM
        segments = []
        parts = (
            ("prompt", row.prompt_tokens, "prompt tokens"),
            ("completion", row.completion_tokens, "completion tokens"),
            ("memory", row.summary_tokens, "memory tokens"),
        )
        for css, value, name in parts:
            height = plot * value / peak
            bottom -= height
            segments.append(Segment(round(bottom, 1), round(height, 1), css, f"{row.label}: {value} {name}"))
        bars.append(
            Bar(
                x=round(index * step + step * 0.15, 1),
                width=round(step * 0.7, 1),
                label=row.label[5:],  # MM-DD
                show_label=index % every == 0,
                total=row.total_tokens,
                total_label=compact(row.total_tokens),
                top=round(bottom - 4, 1),
                segments=segments,
            )
        )
    return {"bars": bars, "width": WIDTH, "height": HEIGHT, "peak": compact(peak), "axis_y": HEIGHT - LABEL_ROOM + 14}


def user_share_bars(rows: list[tuple[int, UsageRow]]) -> list[dict]:
    """One horizontal bar per user, as a percentage of the biggest spender (CSS width)."""
    peak = max((row.total_tokens for _, row in rows), default=0) or 1
    return [
        {
            "user_id": user_id,
            "row": row,
            "percent": round(100 * row.total_tokens / peak, 1),
            "total": compact(row.total_tokens),
        }
        for user_id, row in rows
    ]
