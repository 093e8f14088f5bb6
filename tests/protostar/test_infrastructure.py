"""The real servers the launcher starts: PostgreSQL/pgvector, Redis, S3, rq workers, Channels."""

from __future__ import annotations

import os
import uuid
from datetime import timedelta

import django_rq
import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection

from protostar.storage import minio_client
from tests.conftest import wait_until


@pytest.mark.django_db
def test_vector_extension_exists_and_hnsw_index_can_be_created():
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        assert cursor.fetchone() is not None
        cursor.execute("CREATE TEMP TABLE probe (id serial, embedding vector(3))")
        cursor.execute("INSERT INTO probe (embedding) VALUES ('[1,0,0]'), ('[0,1,0]'), ('[0.9,0.1,0]')")
        cursor.execute("CREATE INDEX ON probe USING hnsw (embedding vector_cosine_ops)")
        cursor.execute("SELECT id FROM probe ORDER BY embedding <=> '[1,0,0]' LIMIT 2")
        assert [row[0] for row in cursor.fetchall()] == [1, 3]


def test_redis_round_trip():
    conn = django_rq.get_connection("default")
    key = f"probe:{uuid.uuid4()}"
    conn.set(key, "한국어 value", ex=10)
    assert conn.get(key).decode() == "한국어 value"
    conn.delete(key)


def test_storage_save_open_delete_through_django():
    name = default_storage.save(f"probe/{uuid.uuid4()}.txt", ContentFile("안녕 storage".encode()))
    try:
        with default_storage.open(name) as handle:
            assert handle.read().decode() == "안녕 storage"
        assert default_storage.exists(name)
    finally:
        default_storage.delete(name)
    assert not default_storage.exists(name)


def test_storage_put_stat_get_remove_through_minio_sdk():
    import io

    client = minio_client()
    name = f"probe/{uuid.uuid4()}.bin"
    client.put_object(bucket_name=settings.S3_BUCKET, object_name=name, data=io.BytesIO(b"xyz"), length=3)
    assert client.stat_object(bucket_name=settings.S3_BUCKET, object_name=name).size == 3
    response = client.get_object(bucket_name=settings.S3_BUCKET, object_name=name)
    try:
        assert response.read() == b"xyz"
    finally:
        response.close()
        response.release_conn()
    client.remove_object(bucket_name=settings.S3_BUCKET, object_name=name)


def test_storage_rejects_wrong_secret():
    from minio import Minio
    from minio.error import S3Error

    endpoint = settings.S3_ENDPOINT_URL.split("://", 1)[1]
    client = Minio(endpoint, access_key=settings.S3_ACCESS_KEY, secret_key="wrong-secret", secure=False)
    with pytest.raises(S3Error):
        client.list_buckets()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("queue_name", ["chat", "knowledge", "summaries", "default"])
def test_job_on_each_queue_runs_in_a_real_worker_process(live_workers, temporary_chat_worker, queue_name):
    queue = django_rq.get_queue(queue_name)
    job = queue.enqueue("protostar.jobs.probe", queue_name)
    wait_until(lambda: job.refresh() or job.is_finished or job.is_failed, timeout=30, message="probe job")
    assert job.is_finished, job.latest_result()
    pid, name = job.return_value()
    assert name == queue_name
    assert pid != os.getpid()  # ran in the worker's work-horse process, not in the test process


def test_enqueues_share_one_client_and_do_not_open_a_connection_each():
    import threading

    from rq.job import Job

    from protostar import queues

    client = queues.connection("summaries")
    assert queues.connection("summaries") is client
    marker = f"probe-{uuid.uuid4().hex}"
    # Scheduled an hour ahead, the probes are never due while the test runs: no worker takes one (and so none
    # can vanish into a worker's execution before ``delete()``), yet each is a real enqueue through the client.
    later = timedelta(hours=1)
    queues.queue("summaries").enqueue_in(later, "protostar.jobs.probe", marker).delete()  # the pool holds one now

    def connections() -> int:
        return len(client.client_list())

    before = connections()
    enqueued: list[str] = []

    def enqueue(count: int) -> None:
        for _ in range(count):
            enqueued.append(queues.queue("summaries").enqueue_in(later, "protostar.jobs.probe", marker).id)

    # Two threads enqueueing at once: one thread-safe pool, at most one more connection, not one per enqueue.
    threads = [threading.Thread(target=enqueue, args=(20,)), threading.Thread(target=enqueue, args=(20,))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert connections() <= before + 1
    jobs = [job for job in Job.fetch_many(enqueued, connection=client) if job is not None]
    assert len(jobs) == 40 and all(job.args == (marker,) for job in jobs)
    for job in jobs:
        job.delete()


def test_channel_layer_round_trip():
    layer = get_channel_layer()

    async def round_trip():
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "probe.message", "text": "안녕"})
        return await layer.receive(channel)

    assert async_to_sync(round_trip)() == {"type": "probe.message", "text": "안녕"}
