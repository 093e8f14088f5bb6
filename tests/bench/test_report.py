"""The benchmarks page's tables are written from stored result files, and new benchmarks' results join it."""

from __future__ import annotations

import json

from bench import report

PAGE = """# Benchmarks

<!-- results: ingest -->
stale table
<!-- /results -->

## Other results

<!-- results: * -->
<!-- /results -->
"""


def _store(directory, name: str, result: dict) -> None:
    (directory / f"{name}.json").write_text(json.dumps(result, ensure_ascii=False))


def test_named_blocks_get_their_tables_and_goals_and_other_results_are_listed(tmp_path):
    _store(
        tmp_path,
        "ingest",
        {
            "measured": "2026-12-01",
            "rows": [{"run": "(b) 업로드 → worker", "pages/s": 0.74}],
            "checks": [{"figure": "ratio b/a", "value": 0.926, "goal": ">= 0.9"}],
        },
    )
    _store(tmp_path, "ocr_speed", {"rows": [{"pages": 12}], "checks": [{"figure": "p/s", "value": 2, "goal": "≥ 3"}]})

    page = report.rewrite(PAGE, report.load_results(tmp_path))

    assert "stale table" not in page
    assert "| (b) 업로드 → worker | 0.74 |" in page
    assert "ratio b/a **0.926** (>= 0.9: met)." in page and "_Measured 2026-12-01._" in page
    assert "### `ocr_speed`" in page and "p/s **2** (≥ 3: **not met**)" in page
    assert report.rewrite(page, report.load_results(tmp_path)) == page  # regenerating changes nothing


def test_a_result_without_goals_keeps_its_date_out_of_the_table(tmp_path):
    _store(tmp_path, "ingest", {"measured": "2026-12-01", "rows": [{"pages": 12}]})
    page = report.rewrite(PAGE, report.load_results(tmp_path))
    assert "| 12 |\n\n_Measured 2026-12-01._" in page


def test_a_block_without_results_says_how_to_store_them(tmp_path):
    page = report.rewrite(PAGE, {})
    assert "save a run as `bench/results/ingest.json`" in page and "None yet." in page


def test_retrieval_results_are_read_in_the_scripts_own_shape():
    metrics = {"n": 10, "r@1": 0.5, "r@5": 0.9, "r@10": 1.0, "mrr": 0.7}
    result = {"metrics": {"vector": {"overall": metrics}, "hybrid": {"overall": {**metrics, "r@5": 0.96}}}}
    page = report.rewrite("<!-- results: retrieval_eval -->\n<!-- /results -->\n", {"retrieval_eval": result})
    assert "| overall | 10 | 0.9 | 0.5 | 0.96 | 1 | 0.7 |" in page
    assert "hybrid R@5, all questions **0.96** (>= 0.95: met)" in page


def test_saving_takes_the_last_json_object_a_script_printed():
    printed = 'progress 1/2\n{"rows": []}\nratio 0.9\n{"rows": [{"a": 1}]}\n'
    assert report.last_json_object(printed) == {"rows": [{"a": 1}]}
    assert report.last_json_object(json.dumps({"rows": [1]}, indent=2)) == {"rows": [1]}
