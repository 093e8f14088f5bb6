#!/usr/bin/env python
"""Write the result tables of ``docs/benchmarks.md`` from the runs stored in ``bench/results/*.json``.

    make bench-docs                                   # or: python bench/report.py
    python bench/retrieval_eval.py --reuse --json | python bench/report.py --save retrieval_eval

``--save NAME`` keeps the last JSON object a script printed (its ``--json`` output) as ``bench/results/NAME.json``,
stamped with the date, then rewrites the page. In the page, each ``<!-- results: NAME -->`` … ``<!-- /results -->``
block is replaced by NAME's table; result files that no block names are listed in the ``<!-- results: * -->`` block,
so a new benchmark's results appear as soon as its JSON is saved.

A result file is either a script's own output with a renderer below (``retrieval_eval``), or the common shape any
script can print::

    {"rows": [{"column": value, ...}, ...],            # the table, columns in the first row's order
     "checks": [{"figure": "...", "value": 0.93, "goal": ">= 0.9"}, ...],   # each figure against its goal
     "config": {...}, "notes": "one line under the table"}
"""

from __future__ import annotations

import argparse
import datetime
import json
import operator
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PAGE = ROOT / "docs" / "benchmarks.md"
BLOCK = re.compile(r"(<!-- results: (?P<name>[\w*.-]+) -->\n)(?P<body>.*?)(<!-- /results -->)", re.DOTALL)
GOAL = re.compile(r"^\s*(>=|<=|>|<|==|≥|≤)\s*(-?[\d.]+)\s*$")
COMPARE = {">=": operator.ge, "≥": operator.ge, "<=": operator.le, "≤": operator.le, ">": operator.gt}
COMPARE |= {"<": operator.lt, "==": operator.eq}


def load_results(directory: Path = RESULTS) -> dict[str, dict[str, Any]]:
    return {path.stem: json.loads(path.read_text()) for path in sorted(directory.glob("*.json"))}


def cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value).replace("|", "\\|")


def table(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return []
    columns = list(rows[0])
    for row in rows[1:]:
        columns += [column for column in row if column not in columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(cell(row.get(column, "")) for column in columns) + " |" for row in rows]
    return lines


def met(value: Any, goal: str) -> str:
    match = GOAL.match(goal or "")
    if not match or not isinstance(value, int | float):
        return ""
    return "met" if COMPARE[match.group(1)](value, float(match.group(2))) else "**not met**"


def goals_line(checks: list[dict[str, Any]]) -> list[str]:
    """Each figure against its goal, in one line under the table (a second table made the page twice as long)."""
    parts = []
    for check in checks:
        goal = check.get("goal", "")
        verdict = met(check["value"], goal)
        parts.append(f"{check['figure']} **{cell(check['value'])}**" + (f" ({goal}: {verdict})" if goal else ""))
    return ["Goals: " + "; ".join(parts) + "."]


def render_common(result: dict[str, Any]) -> list[str]:
    lines = table(result.get("rows", []))
    if result.get("checks"):
        lines += ["", *goals_line(result["checks"])]
    return lines


RETRIEVAL_GROUPS = ("overall", "lang=ko", "lang=en", "kind=paraphrase", "kind=cross-lingual", "kind=keyword")


def render_retrieval_eval(result: dict[str, Any]) -> list[str]:
    """``bench/retrieval_eval.py --json``: recall@5 of every list and the hybrid search's figures, per group."""
    metrics = result["metrics"]
    rows = []
    for group in RETRIEVAL_GROUPS:
        if group not in metrics.get("hybrid", {}):
            continue
        hybrid = metrics["hybrid"][group]
        row: dict[str, Any] = {"questions": group.split("=")[-1], "n": hybrid["n"]}
        row |= {f"{mode} R@5": metrics[mode][group]["r@5"] for mode in metrics if mode != "hybrid"}
        row |= {"hybrid R@1": hybrid["r@1"], "hybrid R@5": hybrid["r@5"], "hybrid R@10": hybrid["r@10"]}
        row["hybrid MRR"] = hybrid["mrr"]
        rows.append(row)
    overall = metrics["hybrid"]["overall"]
    best_other = max(metrics[mode]["overall"]["r@5"] for mode in metrics if mode != "hybrid")
    checks = [
        {"figure": "hybrid R@5, all questions", "value": overall["r@5"], "goal": ">= 0.95"},
        {"figure": "hybrid R@5 minus the best single list", "value": overall["r@5"] - best_other, "goal": ">= 0"},
    ]
    return [*table(rows), "", *goals_line(checks)]


def render_chat_stream(result: dict[str, Any]) -> list[str]:
    """``bench/chat_stream.py --json FILE``: one row per round; the common shape when stored that way."""
    if "checks" in result or not result.get("rows") or "relay_p99_ms" not in result["rows"][0]:
        return render_common(result)
    rows = [
        {"round": row["label"], "N": row["n"], "relay p50 ms": row["relay_p50_ms"], "relay p99 ms": row["relay_p99_ms"]}
        | {"added TTFT p50 ms": row["ttft_added_p50_ms"], "lost tokens": row["lost"]}
        for row in result["rows"]
    ]
    checks = []
    for row in result["rows"]:
        goal = "<= 25" if row["n"] == 1 else "<= 100"
        checks.append({"figure": f"N = {row['n']} relay p99 ms", "value": row["relay_p99_ms"], "goal": goal})
        checks.append({"figure": f"N = {row['n']} added TTFT p50 ms", "value": row["ttft_added_p50_ms"]})
        checks[-1]["goal"] = "<= 150"
        checks.append({"figure": f"N = {row['n']} lost tokens", "value": row["lost"], "goal": "== 0"})
    return [*table(rows), "", *goals_line(checks)]


RENDERERS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "retrieval_eval": render_retrieval_eval,
    "chat_stream": render_chat_stream,
}


def render(name: str, result: dict[str, Any]) -> str:
    lines = RENDERERS.get(name, render_common)(result)
    stamp = f"Measured {result.get('measured', 'on an unrecorded date')}"
    stamp += f" ({result['source']})." if result.get("source") else "."
    if lines and lines[-1].startswith("|"):
        lines.append("")  # a line right under a table would be read as one more row
    lines.append(f"_{stamp} {result.get('notes', '')}_".replace(" _", "_"))
    return "\n".join(lines) + "\n"


def rewrite(page: str, results: dict[str, dict[str, Any]]) -> str:
    named = {match.group("name") for match in BLOCK.finditer(page)}

    def replace(match: re.Match) -> str:
        name = match.group("name")
        if name == "*":
            others = [n for n in results if n not in named]
            body = "".join(f"### `{n}`\n\n{render(n, results[n])}\n" for n in others) or "None yet.\n"
        elif name in results:
            body = render(name, results[name])
        else:
            body = f"_No results stored yet: save a run as `bench/results/{name}.json`._\n"
        return match.group(1) + body + match.group(4)

    return BLOCK.sub(replace, page)


def last_json_object(text: str) -> dict[str, Any]:
    """The whole input when it is one JSON document (a file a script wrote), else its last line holding an object."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise SystemExit("no JSON object on standard input (run the benchmark with --json)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--save", metavar="NAME", help="store the JSON read from standard input as NAME first")
    parser.add_argument("--check", action="store_true", help="exit 1 if the page is not up to date (changes nothing)")
    args = parser.parse_args(argv)
    if args.save:
        result = last_json_object(sys.stdin.read())
        result.setdefault("measured", datetime.date.today().isoformat())
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / f"{args.save}.json").write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n")
    page = PAGE.read_text()
    updated = rewrite(page, load_results())
    if args.check:
        return int(updated != page)
    PAGE.write_text(updated)
    return 0


if __name__ == "__main__":
    sys.exit(main())
