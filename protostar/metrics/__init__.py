"""Protostar's own Prometheus figures (request and database figures come from django-prometheus).

Defined once here and updated by the code that knows the fact: the chat worker (answers, first token, tokens), the
knowledge worker (pages), the embedder seam (latency), every worker (jobs failed or retried). Queue depth and the
age of the oldest job are read from Redis when ``/metrics`` is scraped (``collectors.QueueCollector``).
The list, with what each figure means, is in ``docs/operations.md``.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Seconds; the first-token buckets reach minutes because a question may wait behind a busy embedder.
TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120)
RELAY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)
EMBED_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

ANSWERS_IN_FLIGHT = Gauge(
    "protostar_answers_in_flight",
    "Answers a chat worker is preparing or streaming now.",
    multiprocess_mode="livesum",
)
ANSWERS = Counter("protostar_answers_total", "Answers finished, by final status.", ["status"])
ANSWER_TTFT = Histogram(
    "protostar_answer_ttft_seconds",
    "Time from the question being stored to the answer's first token in its stream.",
    buckets=TTFT_BUCKETS,
)
ANSWER_DURATION = Histogram(
    "protostar_answer_duration_seconds",
    "Time from the question being stored to the answer being finished and stored.",
    buckets=TTFT_BUCKETS,
)
TOKEN_RELAY = Histogram(
    "protostar_token_relay_seconds",
    "Time from a model piece reaching the chat worker to its entry being stored and published to the sockets.",
    buckets=RELAY_BUCKETS,
)
TOKENS_STREAMED = Counter("protostar_tokens_streamed_total", "Completion tokens streamed to answer streams.")
JOBS_FAILED = Counter("protostar_jobs_failed_total", "Jobs that raised and will not run again.", ["queue"])
JOBS_RETRIED = Counter("protostar_jobs_retried_total", "Jobs that raised and were queued again (rq Retry).", ["queue"])
INGESTED_PAGES = Counter(
    "protostar_ingestion_pages_total",
    "Pages (one per text file) of documents made searchable; rate() gives pages per second.",
)
INGESTED_DOCUMENTS = Counter("protostar_ingestion_documents_total", "Documents ingested, by final status.", ["status"])
INGESTION_DURATION = Histogram(
    "protostar_ingestion_duration_seconds",
    "Time one ingestion job took (fetch, extract, chunk, embed, store).",
    buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
)
EMBEDDER_LATENCY = Histogram(
    "protostar_embedder_seconds",
    "Time of one embedder call, by kind (query, passages, sparse).",
    ["kind"],
    buckets=EMBED_BUCKETS,
)
QUOTA_REFUSALS = Counter(
    "protostar_quota_refusals_total",
    "Asks refused by the admission rules (quota_exceeded, rate_limited, too_many_open_answers), by refusal code.",
    ["kind"],
)
