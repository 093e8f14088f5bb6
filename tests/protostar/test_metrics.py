"""``/metrics``: refused to anonymous scrapers, merged across processes, with our own figures and every queue's."""

from __future__ import annotations

import json
import logging
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families
from pythonjsonlogger.json import JsonFormatter
from rq import Queue, Retry

from protostar import metrics, queues
from protostar.logs import ContextFilter, log_context, logging_config
from protostar.metrics.collectors import QueueCollector
from protostar.workers import SimpleWorker
from tests.protostar.test_app import _run_check

TOKEN = "scrape-token-" + "x" * 20


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_anonymous_scrape_is_refused_with_a_code_and_no_figures(client, settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_NETWORKS = TOKEN, []
    response = client.get("/metrics")
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden" and "protostar_" not in response.content.decode()
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer " + TOKEN[:-1] + "y")
    assert wrong.status_code == 403


def test_with_neither_token_nor_network_configured_nobody_may_scrape(client, settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_NETWORKS = "", []
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 403


def test_token_or_allowed_network_admits_the_scraper(client, settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_NETWORKS = TOKEN, []
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_NETWORKS = "", ["10.0.0.0/8", "127.0.0.0/8"]
    assert client.get("/metrics").status_code == 200  # the test client's address is 127.0.0.1
    assert client.get("/metrics", REMOTE_ADDR="192.168.1.9").status_code == 403


def test_scrape_merges_figures_written_by_this_and_other_processes(client, settings):
    settings.METRICS_TOKEN = TOKEN
    before = samples(client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode())
    metrics.QUOTA_REFUSALS.labels("questions").inc()
    metrics.EMBEDDER_LATENCY.labels("query").observe(0.02)
    after = samples(client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode())
    key = ("protostar_quota_refusals_total", (("kind", "questions"),))
    assert after[key] == before.get(key, 0) + 1
    count = ("protostar_embedder_seconds_count", (("kind", "query"),))
    assert after[count] == before.get(count, 0) + 1
    # django-prometheus's request figures are there too (this very scrape went through its middleware).
    assert any(name.startswith("django_http_requests") for name, _ in after)


def test_queue_depth_and_oldest_job_age_are_read_from_redis():
    name = f"metrics-probe-{uuid.uuid4().hex[:8]}"
    queue = Queue(name, connection=queues.connection())
    try:
        queue.enqueue("protostar.jobs.probe", "첫 번째")
        queue.enqueue("protostar.jobs.probe", "second")
        families = {f.name: f for f in QueueCollector(names=[name], connection=queues.connection()).collect()}
        depth = families["protostar_queue_depth"].samples[0]
        assert depth.labels == {"queue": name} and depth.value == 2
        assert families["protostar_queue_oldest_job_age_seconds"].samples[0].value >= 0
        assert families["protostar_queue_workers"].samples[0].value == 0
        queue.empty()
        families = {f.name: f for f in QueueCollector(names=[name], connection=queues.connection()).collect()}
        assert families["protostar_queue_depth"].samples[0].value == 0
        assert families["protostar_queue_oldest_job_age_seconds"].samples[0].value == 0
    finally:
        queue.delete(delete_jobs=True)


def test_every_configured_queue_is_reported(client, settings):
    settings.METRICS_TOKEN = TOKEN
    found = samples(client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode())
    for name in settings.QUEUE_NAMES:
        assert ("protostar_queue_depth", (("queue", name),)) in found
        assert ("protostar_queue_oldest_job_age_seconds", (("queue", name),)) in found


def test_log_lines_are_json_with_the_jobs_ids_and_korean_kept_readable(capsys):
    formatter_config = logging_config(level="INFO", fmt="json")["formatters"]["json"]
    options = {k: v for k, v in formatter_config.items() if k != "()"}
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter(**options))
    handler.addFilter(ContextFilter())
    logger = logging.getLogger("tests.json-lines")
    logger.addHandler(handler)
    try:
        with log_context(message_id=41, user_id=7):
            logger.warning("답변 %s streamed", 41)
        logger.warning("outside any job")
    finally:
        logger.removeHandler(handler)
    inside, outside = (json.loads(line) for line in capsys.readouterr().err.splitlines())
    assert inside["message"] == "답변 41 streamed" and inside["level"] == "WARNING"
    assert inside["message_id"] == 41 and inside["user_id"] == 7 and inside["logger"] == "tests.json-lines"
    assert "message_id" not in outside and "user_id" not in outside


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"METRICS_ALLOWED_NETWORKS": "10.0.0.0/33"}, "METRICS_ALLOWED_NETWORKS has an invalid network"),
        ({"METRICS_TOKEN": "short"}, "METRICS_TOKEN must be at least 16 characters"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT must be 'json' or 'plain'"),
    ],
)
def test_bad_metrics_or_log_settings_fail_at_start_up(tmp_path, overrides, message):
    result = _run_check(tmp_path, **overrides)
    assert result.returncode != 0
    assert message in result.stderr


def explode(label: str) -> None:
    raise RuntimeError(f"{label} failed on purpose")


def test_a_worker_counts_failed_and_retried_jobs_by_queue(client, settings):
    settings.METRICS_TOKEN = TOKEN
    name = f"metrics-jobs-{uuid.uuid4().hex[:8]}"
    conn = queues.connection()
    queue = Queue(name, connection=conn)
    failed, retried = (
        ("protostar_jobs_failed_total", (("queue", name),)),
        ("protostar_jobs_retried_total", (("queue", name),)),
    )
    try:
        queue.enqueue(explode, "실패")
        queue.enqueue(explode, "retried", retry=Retry(max=1))
        SimpleWorker([queue], connection=conn).work(burst=True)  # a real worker, in this process, until empty
        found = samples(client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode())
        # The second job ran twice: once retried, then failed for good.
        assert found[failed] == 2 and found[retried] == 1
    finally:
        queue.delete(delete_jobs=True)
